"""The Cloud Sync notifications websocket (``ledger-sync-api.md`` §4.3), as an async iterator.

Protocol: on open the client sends its raw access token as a text frame; the server then
sends ``ping`` (answer ``pong``), ``JWT expired`` (send a fresh token), or a decimal version
number (new data is available). Other frames are ignored.

Unlike Ledger's observable, the subscription survives a dropped connection: it reconnects
(with a short backoff, at most ``max_reconnects`` times in a row) and sends a fresh token on
each new connection. A close that the server initiates cleanly (code 1000/1001) ends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .errors import NetworkError

log = logging.getLogger(__name__)

PING = "ping"
PONG = "pong"
JWT_EXPIRED = "JWT expired"
NORMAL_CLOSURES = frozenset({1000, 1001})


class Notifications:
    """``async with`` it, then ``async for version in it``.

    ``get_token`` returns a fresh access token; it is called on every connection and on
    every ``JWT expired``.
    """

    def __init__(
        self,
        url: str,
        get_token: Callable[[], Awaitable[str]],
        *,
        reconnect: bool = True,
        max_reconnects: int = 5,
        backoff: float = 0.5,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._get_token = get_token
        self._reconnect = reconnect
        self._max_reconnects = max_reconnects
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._connection: ClientConnection | None = None
        self._closed = False
        self._iterator: AsyncIterator[int] | None = None
        #: Number of connections opened so far (1 after the first).
        self.connections = 0
        #: Set each time a connection is open and its token sent.
        self.connected = asyncio.Event()

    async def __aenter__(self) -> Notifications:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[int]:
        if self._iterator is None:
            self._iterator = self._versions()
        return self._iterator

    async def aclose(self) -> None:
        self._closed = True
        if self._connection is not None:
            await self._connection.close()
        iterator = self._iterator
        if iterator is not None and not getattr(iterator, "ag_running", False):
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _open(self) -> ClientConnection:
        try:
            connection = await connect(self.url, open_timeout=self._open_timeout)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise NetworkError(f"cannot open {self.url}: {exc}", url=self.url) from exc
        self._connection = connection
        self.connections += 1
        await connection.send(await self._get_token())
        self.connected.set()
        return connection

    async def _versions(self) -> AsyncIterator[int]:
        failures = 0
        while not self._closed:
            try:
                connection = await self._open()
                async for frame in connection:
                    failures = 0
                    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
                    if text == PING:
                        await connection.send(PONG)
                    elif text == JWT_EXPIRED:
                        await connection.send(await self._get_token())
                    else:
                        try:
                            version = int(text.strip())
                        except ValueError:
                            log.warning("cloud sync notifications: unexpected frame %r", text)
                            continue
                        yield version
                code = connection.close_code
                if self._closed or code in NORMAL_CLOSURES or not self._reconnect:
                    return
                reason = f"closed with code {code}"
            except (ConnectionClosed, NetworkError) as exc:
                if self._closed:
                    return
                if not self._reconnect:
                    raise NetworkError(f"notifications: {exc}", url=self.url) from exc
                reason = str(exc)
            finally:
                self.connected.clear()
            failures += 1
            if failures > self._max_reconnects:
                raise NetworkError(
                    f"notifications: gave up after {self._max_reconnects} reconnections ({reason})",
                    url=self.url,
                )
            log.info("cloud sync notifications: %s; reconnecting", reason)
            await asyncio.sleep(self._backoff * failures)  # backoff, not synchronisation
