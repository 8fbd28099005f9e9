"""The message bus between server processes: in-process for SQLite, LISTEN/NOTIFY for PostgreSQL.

Two features need to reach connections held by *other* processes of a deployment: Cloud Sync
notifications (a write handled by one process, a subscriber connected to another) and the QR
relay (host and candidate of a pairing on different processes). Both publish text messages on
a named channel; every process of the deployment, the publishing one included, hands each
message to the handlers subscribed to that channel.

* :class:`InProcessBroker` (SQLite: one process): ``publish`` calls the handlers directly.
* :class:`PostgresBroker`: ``publish`` calls the local handlers directly (no round trip for
  subscribers of the same process) and queues the message for ``NOTIFY``; one background task
  sends what is queued in a single statement (``SELECT pg_notify(…) FROM unnest(…)``), so a
  burst of writes costs one round trip. A dedicated connection ``LISTEN``\\ s; messages that
  come back from this process are skipped (each broker has a random origin id), the others go
  to the local handlers. No extra service: PostgreSQL is the bus.

Wire format of a notification: ``<origin>:<sequence>:<index>/<count>:<data>``. PostgreSQL caps
a payload at 8000 bytes, so a longer message is cut into parts of at most
:data:`CHUNK_BYTES` bytes, each base64-encoded (parts of UTF-8 text may split a character), and
reassembled by the receivers; a message (whole) may be at most :data:`MAX_MESSAGE_BYTES`.
Every payload is distinct (origin, sequence), so PostgreSQL never folds two into one.

Delivery is at most once: a listener connection that drops is re-opened (with back-off), and
what was published meanwhile is not replayed. Cloud Sync clients poll anyway; a QR pairing in
flight fails and is restarted by the user.

Ordering: messages from one process reach every other process in publication order (one
sending connection, notifications delivered in commit order).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("ledgersync.broker")

Handler = Callable[[str], None]

#: Channel names (PostgreSQL identifiers).
CLOUDSYNC_CHANNEL = "ledgersync_cloudsync"
QR_CHANNEL = "ledgersync_qr"

#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; a part is at most this many
#: bytes before base64 (6668 after), leaving room for the header.
CHUNK_BYTES = 5000
#: The largest message the PostgreSQL broker carries (the QR relay's frames are smaller).
MAX_MESSAGE_BYTES = 1 << 20
#: Incomplete multi-part messages are dropped after this many seconds.
REASSEMBLY_TIMEOUT = 30.0
#: Messages waiting for NOTIFY beyond this are dropped (PostgreSQL unreachable).
MAX_QUEUED = 100_000


class MessageTooLarge(ValueError):
    pass


class Broker(Protocol):
    """Publish text messages to every process of the deployment."""

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler(message)`` for each message published on ``channel`` (by any
        process, including this one). Handlers run on the event loop and must not block."""
        ...

    def publish(self, channel: str, message: str) -> None:
        """Deliver to this process's handlers now and send to the other processes."""
        ...

    async def close(self) -> None: ...


class InProcessBroker:
    """One process: publishing is calling the handlers."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    def publish(self, channel: str, message: str) -> None:
        _dispatch(self._handlers.get(channel, ()), message)

    async def close(self) -> None:
        self._handlers.clear()


def _dispatch(handlers: Any, message: str) -> None:
    for handler in handlers:
        try:
            handler(message)
        except Exception:  # one faulty handler must not starve the others
            log.exception("broker handler failed")


class PostgresBroker:
    """LISTEN/NOTIFY on the deployment's PostgreSQL database."""

    RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)

    def __init__(self, url: str, *, channels: tuple[str, ...]) -> None:
        self._url = url
        self._channels = channels
        self._handlers: dict[str, list[Handler]] = {}
        self.origin = os.urandom(6).hex()
        self._sequence = 0
        self._queue: list[tuple[str, str]] = []
        self._wakeup = asyncio.Event()
        self._partial: dict[tuple[str, str], _Partial] = {}
        self._listener: Any = None
        self._listening = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls, url: str, *, channels: tuple[str, ...] = (CLOUDSYNC_CHANNEL, QR_CHANNEL)
    ) -> PostgresBroker:
        """Connect, LISTEN, and start the sender; returns once this process is listening."""
        broker = cls(url, channels=channels)
        broker._tasks = [
            asyncio.create_task(broker._listen_forever(), name="broker-listen"),
            asyncio.create_task(broker._send_forever(), name="broker-send"),
        ]
        try:
            await asyncio.wait_for(broker._listening.wait(), 30)
        except TimeoutError:
            await broker.close()
            raise RuntimeError("could not LISTEN on the PostgreSQL database") from None
        return broker

    def subscribe(self, channel: str, handler: Handler) -> None:
        if channel not in self._channels:
            raise ValueError(f"channel {channel!r} is not listened to")
        self._handlers.setdefault(channel, []).append(handler)

    def publish(self, channel: str, message: str) -> None:
        data = message.encode()
        if len(data) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(f"broker messages are limited to {MAX_MESSAGE_BYTES} bytes")
        _dispatch(self._handlers.get(channel, ()), message)
        if len(self._queue) >= MAX_QUEUED:
            log.warning("broker queue full: message dropped")
            return
        self._sequence += 1
        header = f"{self.origin}:{self._sequence}"
        if len(data) <= CHUNK_BYTES and message.isascii():
            self._queue.append((channel, f"{header}:0/1:{message}"))
        else:  # parts of at most CHUNK_BYTES bytes, base64 (a part may split a character)
            parts = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
            for index, part in enumerate(parts):
                encoded = base64.b64encode(part).decode()
                self._queue.append((channel, f"{header}:{index}/{len(parts)}b:{encoded}"))
        self._wakeup.set()

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        self._handlers.clear()

    # --- receiving ----------------------------------------------------------------------------

    def _on_notification(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            origin, sequence, position, data = payload.split(":", 3)
        except ValueError:
            log.warning("ignoring a malformed broker notification")
            return
        if origin == self.origin:
            return
        message = self._reassemble(origin, sequence, position, data)
        if message is not None:
            _dispatch(self._handlers.get(channel, ()), message)

    def _reassemble(self, origin: str, sequence: str, position: str, data: str) -> str | None:
        encoded = position.endswith("b")
        index_text, _, count_text = position.removesuffix("b").partition("/")
        try:
            index, count = int(index_text), int(count_text)
        except ValueError:
            return None
        if not 0 <= index < count <= MAX_MESSAGE_BYTES // CHUNK_BYTES + 1:
            return None
        if not encoded:
            return data
        try:
            part = base64.b64decode(data, validate=True)
        except ValueError:
            return None
        if count == 1:
            return part.decode(errors="replace")
        key = (origin, sequence)
        now = time.monotonic()
        partial = self._partial.get(key)
        if partial is None:
            self._expire_partials(now)
            partial = self._partial[key] = _Partial(count, now)
        partial.parts[index] = part
        if len(partial.parts) < partial.count:
            return None
        del self._partial[key]
        return b"".join(partial.parts[i] for i in range(partial.count)).decode(errors="replace")

    def _expire_partials(self, now: float) -> None:
        for key, partial in list(self._partial.items()):
            if now - partial.started > REASSEMBLY_TIMEOUT:
                del self._partial[key]

    async def _listen_forever(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        attempt = 0
        while not self._closing:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self._url)
                connection.add_termination_listener(_setter(lost))
                for channel in self._channels:
                    await connection.add_listener(channel, self._on_notification)
            except (OSError, asyncpg.PostgresError) as exc:
                delay = self.RECONNECT_DELAYS[min(attempt, len(self.RECONNECT_DELAYS) - 1)]
                attempt += 1
                log.warning("broker: cannot LISTEN (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._listener = connection
            self._listening.set()
            await lost.wait()
            self._listener = None
            log.warning("broker: the LISTEN connection was lost; reconnecting")

    # --- sending ------------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        import asyncpg

        connection: Any = None
        attempt = 0
        while not self._closing:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._queue = self._queue, []
            try:
                if connection is None or connection.is_closed():
                    connection = await asyncpg.connect(self._url)
                await connection.execute(
                    "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)",
                    [channel for channel, _ in batch],
                    [payload for _, payload in batch],
                )
                attempt = 0
            except (OSError, asyncpg.PostgresError) as exc:
                delay = self.RECONNECT_DELAYS[min(attempt, len(self.RECONNECT_DELAYS) - 1)]
                attempt += 1
                log.warning("broker: NOTIFY failed (%s); %d messages lost", exc, len(batch))
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
                connection = None
                await asyncio.sleep(delay)
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _connection: event.set()


class _Partial:
    __slots__ = ("count", "parts", "started")

    def __init__(self, count: int, started: float) -> None:
        self.count = count
        self.started = started
        self.parts: dict[int, bytes] = {}


async def open_broker(database_url: str) -> Broker:
    """The broker that fits the database: PostgreSQL's LISTEN/NOTIFY, else in-process."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return await PostgresBroker.open(database_url)
    return InProcessBroker()
