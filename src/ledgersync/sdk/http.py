"""The HTTP plumbing shared by the Key Ring and Cloud Sync clients.

Rules (docs/api.md, "Conventions"):

* a base URL is ``http(s)://host[:port][/prefix]``, checked when a client is built: the
  server's root, or the prefix a reverse proxy serves it under, never ending in the ``/v1``
  or ``/atomic/v1`` that the clients add to every path (:func:`check_base_url`);

* a 4xx becomes :class:`LedgerAPI4xx` whose message is the body's ``message`` (falling back to
  ``error_message``, ``error``, ``msg``, then the raw text): the SDK's error handling matches
  substrings of it, exactly as Ledger's does;
* a 5xx becomes :class:`LedgerAPI5xx`, a transport failure :class:`NetworkError`;
* GETs are side-effect free, so a GET that fails on the network or with a 5xx is retried
  (``get_retries`` times); 4xx answers are never retried here, the auth policy handles them;
* ``X-Ledger-Client-Version`` is sent when a client version is configured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from .errors import InvalidArgument, InvalidResponse, LedgerAPI4xx, LedgerAPI5xx, NetworkError

DEFAULT_TIMEOUT = 60.0
DEFAULT_GET_RETRIES = 2
CLIENT_VERSION_HEADER = "X-Ledger-Client-Version"

#: The form of a base URL, as the errors that refuse one say it.
BASE_URL_FORM = "http(s)://host[:port][/prefix]"
#: Path endings the clients add themselves (Cloud Sync's first: it also ends in ``/v1``).
API_PATHS = ("/atomic/v1", "/v1")


def check_base_url(url: str, what: str = "base URL") -> str:
    """``url`` as the clients use it (scheme in lower case, no trailing slash), or
    :class:`InvalidArgument` saying what is wrong and what is expected.

    ``what`` names the URL in the message (``"Key Ring API base URL"``).
    """
    if not isinstance(url, str):
        raise InvalidArgument(f"the {what} must be a string like http://localhost:8080")
    given, url = url, url.strip()

    def refuse(reason: str) -> InvalidArgument:
        return InvalidArgument(
            f"the {what} {given!r} {reason}; expected {BASE_URL_FORM}, "
            "for example http://localhost:8080"
        )

    if any(char.isspace() for char in url):
        raise refuse("contains spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not url[len(parts.scheme) :].startswith("://"):
        raise refuse("has no http:// or https:// scheme")
    if not parts.hostname:
        raise refuse("has no host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise refuse("has a bad port") from None
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise refuse("has a query or a fragment")
    url = parts.scheme + url[len(parts.scheme) :].rstrip("/")
    path = parts.path.rstrip("/").lower()
    for suffix in API_PATHS:
        if path.endswith(suffix):
            fixed = url[: len(url) - len(suffix)]
            raise InvalidArgument(
                f"the {what} {given!r} ends in {suffix}, which the SDK adds itself: use "
                f"{fixed!r} instead (expected {BASE_URL_FORM})"
            )
    return url


def error_message(response: httpx2.Response) -> str:
    """The human message of an error answer, as Ledger's network layer extracts it."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "error_message", "error", "msg"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    if isinstance(body, str) and body:
        return body
    return response.text or f"HTTP {response.status_code}"


@dataclass(frozen=True)
class HTTPOptions:
    """How to reach a server: ``transport`` routes requests (tests, embedding), the client
    version is sent as ``X-Ledger-Client-Version``, GETs are retried ``get_retries`` times."""

    transport: httpx2.AsyncBaseTransport | None = None
    client_version: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    get_retries: int = DEFAULT_GET_RETRIES


class JSONClient:
    """An ``httpx2.AsyncClient`` that speaks JSON and raises the SDK's typed errors."""

    def __init__(
        self, base_url: str, options: HTTPOptions | None = None, *, what: str = "base URL"
    ) -> None:
        self.base_url = check_base_url(base_url, what)
        options = options or HTTPOptions()
        headers = {CLIENT_VERSION_HEADER: options.client_version} if options.client_version else {}
        self.get_retries = options.get_retries
        self._client = httpx2.AsyncClient(
            base_url=self.base_url,
            transport=options.transport,
            headers=headers,
            timeout=options.timeout,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        body: Any = None,
        has_body: bool = False,
    ) -> Any:
        """Send one request; return the decoded JSON body, or None for an empty answer."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        content = None
        if has_body:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body).encode("utf-8")
        attempts = 1 + (self.get_retries if method == "GET" else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._client.request(
                    method, path, params=params, headers=headers, content=content
                )
            except httpx2.HTTPError as exc:
                if last:
                    raise NetworkError(
                        f"{method} {path}: {exc or type(exc).__name__}", url=path
                    ) from exc
                continue
            if response.status_code >= 500 and not last:
                continue
            return self._decode(method, path, response)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _decode(method: str, path: str, response: httpx2.Response) -> Any:
        status = response.status_code
        if 400 <= status < 500:
            raise LedgerAPI4xx(error_message(response), status=status, url=path)
        if status >= 500:
            raise LedgerAPI5xx(
                f"{method} {path}: HTTP {status}: {error_message(response)}",
                status=status,
                url=path,
            )
        if status == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise InvalidResponse(
                f"{method} {path}: the answer is not JSON", status=status, url=path
            ) from exc
