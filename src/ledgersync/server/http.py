"""Small HTTP helpers shared by every handler: bounded bodies, bearer tokens, JSON replies.

Handlers never call ``request.body()`` or ``request.json()`` directly: :func:`read_json`
enforces the configured body limit (413) and turns malformed JSON into a 400, so that a
client mistake can never surface as a 500.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .errors import BadRequest, TooLarge, Unauthorized


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as exc:
            raise BadRequest("Content-Length is not a number") from exc
        if size > limit:
            raise TooLarge(f"request body of {size} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """The request body parsed as JSON (any JSON value, including a bare string)."""
    body = await read_body(request, limit)
    try:
        return json.loads(body)
    # ValueError covers every way the parser refuses its input: bad UTF-8 and bad syntax
    # (both subclasses), and also integers beyond Python's int-string limit (4,300 digits),
    # which json.loads raises as a plain ValueError.
    except (ValueError, RecursionError) as exc:
        raise BadRequest("the request body is not valid JSON") from exc


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing Authorization: Bearer <JWT> header")
    return token.strip()


_NO_STORE = {"cache-control": "no-store"}


class PreparedJson:
    """A JSON answer that never changes (``{"status": "up-to-date"}``…), rendered once: the
    body and headers :func:`json_response` would produce, without producing them per request."""

    __slots__ = ("_body", "_headers", "_status")

    def __init__(self, value: Any, status: int = 200) -> None:
        model = json_response(value, status)
        self._body = bytes(model.body)
        self._headers = model.raw_headers
        self._status = status

    def response(self) -> Response:
        return _Prepared(self._body, self._status, self._headers)


class _Prepared(Response):
    def __init__(self, body: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        # Response.__init__ would render the body and build the headers again.
        self.body = body
        self.status_code = status
        self.background = None
        self.raw_headers = list(headers)  # a list of its own, as if built for this response


def json_response(value: Any, status: int = 200) -> Response:
    if isinstance(value, PreparedJson):
        return value.response()
    return JSONResponse(value, status_code=status, headers=_NO_STORE)


def query_items(query_string: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a raw query string, as Starlette's ``QueryParams``
    (``parse_qsl`` with blank values kept) would give them, with less work for values that
    need no decoding (most of them)."""
    items = []
    for field in query_string.decode("latin-1").split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        items.append((_unquote_plus(name), _unquote_plus(value)))
    return items


def _unquote_plus(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text) if "%" in text else text


def no_content() -> Response:
    return Response(status_code=204, headers={"cache-control": "no-store"})
