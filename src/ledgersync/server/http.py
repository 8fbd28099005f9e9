"""Small HTTP helpers shared by every handler: bounded bodies, bearer tokens, JSON replies.

Handlers never call ``request.body()`` or ``request.json()`` directly: :func:`read_json`
enforces the configured body limit (413) and turns malformed JSON into a 400, so that a
client mistake can never surface as a 500.
"""

from __future__ import annotations

import json
from typing import Any

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


def json_response(value: Any, status: int = 200) -> Response:
    return JSONResponse(value, status_code=status, headers={"cache-control": "no-store"})


def no_content() -> Response:
    return Response(status_code=204, headers={"cache-control": "no-store"})
