"""The HTTP plumbing shared by the Key Ring and Cloud Sync clients.

Rules (``ledger-sync-api.md`` §2.1):

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

import httpx2

from .errors import InvalidResponse, LedgerAPI4xx, LedgerAPI5xx, NetworkError

DEFAULT_TIMEOUT = 60.0
DEFAULT_GET_RETRIES = 2
CLIENT_VERSION_HEADER = "X-Ledger-Client-Version"


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

    def __init__(self, base_url: str, options: HTTPOptions | None = None) -> None:
        options = options or HTTPOptions()
        headers = {CLIENT_VERSION_HEADER: options.client_version} if options.client_version else {}
        self.base_url = base_url.rstrip("/")
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
