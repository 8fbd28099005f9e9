"""The Cloud Sync notifications websocket, as an async iterator.

See docs/api.md, "Notifications websocket".

Protocol: on open the client sends its raw access token as a text frame; the server then
sends ``ping`` (answer ``pong``), ``JWT expired`` (send a fresh token), or a decimal version
number (a document changed; ``0`` after a deletion). Other frames are ignored.

A background task owns the socket, so pings are answered and tokens renewed even while the
consumer is busy between two versions; versions wait in a queue. Unlike Ledger's observable,
the subscription survives a broken connection: it reconnects (short backoff, at most
``max_reconnects`` failures in a row, then :class:`NetworkError`) and authenticates the new
connection with a fresh token. A server refusal (close 1008: invalid token, no permission)
ends it with an error; ``reconnect=False`` makes any close end it, as Ledger's does.

Iterating gives the versions alone, as Ledger's observable does. :meth:`Notifications.notices`
also says which of them answer a subscription: the first version after each token sent (on
every connection and every renewal) is the server's answer, the document's current version
(``0``: none), not a change; a ``0`` that is not such an answer is a deletion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..protocol import wire
from .auth import NO_PERMISSION
from .errors import NetworkError, TrustchainNotAllowed

log = logging.getLogger(__name__)

PING = wire.NOTIFY_PING
PONG = wire.NOTIFY_PONG
JWT_EXPIRED = wire.NOTIFY_JWT_EXPIRED
CLOSE_POLICY = wire.CLOSE_POLICY

_END = object()


@dataclass(frozen=True)
class Notice:
    """A version from the server; ``subscribed``: it answers a token just sent (the current
    version on subscribing, or on resuming after a renewal or a reconnection), rather than
    announcing a change."""

    version: int
    subscribed: bool


class Notifications:
    """``async with sdk.notifications(...) as versions: async for version in versions``.

    ``get_token`` returns a fresh access token; it is called for every connection and on
    every ``JWT expired``. The counters are for monitoring and tests.
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
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._connection: ClientConnection | None = None
        self._closed = False
        # A token was sent and the server's answer to it has not come yet.
        self._awaiting_answer = False
        #: Connections opened, tokens sent, pings answered.
        self.connections = 0
        self.tokens_sent = 0
        self.pings = 0

    # --- consumer side ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def __aenter__(self) -> Notifications:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Notifications:
        self.start()
        return self

    async def __anext__(self) -> int:
        return (await self._next_notice()).version

    async def notices(self) -> AsyncIterator[Notice]:
        """The versions with what each one is (:class:`Notice`); iterate this or the versions,
        not both."""
        self.start()
        while True:
            try:
                notice = await self._next_notice()
            except StopAsyncIteration:
                return
            yield notice

    async def _next_notice(self) -> Notice:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # every later call ends too
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._queue.put_nowait(_END)
            raise item
        assert isinstance(item, Notice)
        return item

    async def aclose(self) -> None:
        self._closed = True
        if self._connection is not None:
            await self._connection.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    # --- the socket -------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._serve()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the consumer gets it instead of waiting forever
            self._queue.put_nowait(exc)
        self._queue.put_nowait(_END)

    async def _send_token(self, connection: ClientConnection) -> None:
        token = await self._get_token()
        self._awaiting_answer = True
        await connection.send(token)
        self.tokens_sent += 1

    async def _open(self) -> ClientConnection:
        try:
            connection = await connect(self.url, open_timeout=self._open_timeout)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise NetworkError(f"cannot open {self.url}: {exc}", url=self.url) from exc
        self._connection = connection
        self.connections += 1
        return connection

    async def _serve(self) -> None:
        failures = 0
        while not self._closed:
            try:
                connection = await self._open()
                await self._send_token(connection)
                async for frame in connection:
                    failures = 0
                    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
                    await self._handle(connection, text)
                reason = self._ended(connection)
            except ConnectionClosed:
                if self._connection is None:  # pragma: no cover - set before any frame
                    raise
                reason = self._ended(self._connection)
            except NetworkError as exc:
                reason = str(exc)
            if self._closed:
                return
            if not self._reconnect:
                return
            failures += 1
            if failures > self._max_reconnects:
                raise NetworkError(
                    f"notifications: gave up after {self._max_reconnects} reconnections ({reason})",
                    url=self.url,
                )
            log.info("cloud sync notifications: %s; reconnecting", reason)
            await asyncio.sleep(self._backoff * failures)  # backoff, not synchronisation

    async def _handle(self, connection: ClientConnection, text: str) -> None:
        if text == PING:
            await connection.send(PONG)
            self.pings += 1
        elif text == JWT_EXPIRED:
            await self._send_token(connection)
        else:
            try:
                version = int(text.strip())
            except ValueError:
                log.warning("cloud sync notifications: unexpected frame %r", text[:80])
                return
            self._queue.put_nowait(Notice(version, subscribed=self._awaiting_answer))
            self._awaiting_answer = False

    def _ended(self, connection: ClientConnection) -> str:
        """Why the connection ended; raises if the server refused us."""
        code, reason = connection.close_code, connection.close_reason or ""
        if code == CLOSE_POLICY and not self._closed:
            if NO_PERMISSION in reason:
                raise TrustchainNotAllowed(reason)
            raise NetworkError(f"notifications refused: {reason}", url=self.url)
        return f"closed with code {code} {reason}".strip()
