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

Wire format of a notification: :mod:`~ledgersync.server.broker_format` (pure, tested without a
database): ``<origin>:<sequence>:<index>/<count>:<data>``, long messages in parts.

Messages committed with a database transaction: a store may send a message *inside* its
transaction (``SELECT pg_notify(…)`` with :meth:`PostgresBroker.transactional`'s payload), so
that PostgreSQL delivers it if and only if the transaction commits, to every listener, in
commit order. Handlers subscribed with ``subscribe_ordered`` receive every message of the
channel in that order, this process's own included (they come back through LISTEN): what a
cache of committed state needs. After its commit the store calls ``deliver_local`` for this
process's other handlers (no round trip). Handlers registered with ``on_continuity`` learn
when the listener connection is lost (``False``: messages may be missed from now on) and
when it listens again (``True``).

Catching up (:meth:`PostgresBroker.caught_up`): a commit of another process reaches this one
a moment after that process has answered its client. A cache of committed state that must
never answer older than a commit already acknowledged elsewhere asks the broker to catch up
first: one ``SELECT 1`` on the LISTEN connection, which PostgreSQL answers only after sending
every notification it had to deliver to that connection (a committing backend signals the
listeners before its own client hears of the commit, and a listening backend delivers pending
notifications before it reads its next command), so once the answer is in, every commit
acknowledged before the call has been handed to the ordered handlers. Callers arriving at once
share one round trip: a round on the wire serves those who came before it was sent, the next
round all who came while it was out.

Delivery is at most once: a listener connection that drops is re-opened (with back-off), and
what was published meanwhile is not replayed (the continuity handlers are told). Cloud Sync
clients poll anyway; a QR pairing in flight fails and is restarted by the user.

Ordering: messages from one process reach every other process in publication order (one
sending connection, notifications delivered in commit order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any, Protocol

from .broker_format import Reassembler, encode, encode_single, parse

log = logging.getLogger("ledgersync.broker")

Handler = Callable[[str], None]
#: Called with False when messages may be missed from now on, True once they no longer are.
ContinuityHandler = Callable[[bool], None]

#: Channel names (PostgreSQL identifiers).
CLOUDSYNC_CHANNEL = "ledgersync_cloudsync"
QR_CHANNEL = "ledgersync_qr"

#: The LISTEN connection's ``application_name`` (how an operator finds it in
#: ``pg_stat_activity``).
LISTENER_NAME = "ledgersync-listen"

#: Messages waiting for NOTIFY beyond this are dropped (PostgreSQL unreachable).
MAX_QUEUED = 100_000
#: Longest wait for a transactional notification to come back (see ``received``).
ECHO_TIMEOUT = 5.0
#: Own notifications remembered as come back before anyone waited for them.
MAX_EARLY_ECHOES = 10_000


class Broker(Protocol):
    """Publish text messages to every process of the deployment."""

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler(message)`` for each message published on ``channel`` (by any
        process, including this one). Handlers run on the event loop and must not block."""
        ...

    def subscribe_ordered(self, channel: str, handler: Handler) -> None:
        """Call ``handler(message)`` for every message committed on ``channel`` (through
        :meth:`transactional` and :meth:`deliver_local`), by any process, in commit order."""
        ...

    def on_continuity(self, handler: ContinuityHandler) -> None:
        """Tell ``handler`` whether messages of other processes are received (at once, then
        on each change: False when they may be missed, True when they are received again)."""
        ...

    def publish(self, channel: str, message: str) -> None:
        """Deliver to this process's handlers now and send to the other processes."""
        ...

    def transactional(self, channel: str, message: str) -> tuple[str, str] | None:
        """The (channel, payload) for a ``pg_notify`` inside the transaction that commits
        the change ``message`` describes; None if other processes need not be told."""
        ...

    def deliver_local(self, channel: str, message: str) -> None:
        """``message`` was committed (sent with :meth:`transactional`): hand it to this
        process's handlers."""
        ...

    async def received(self, notifications: list[tuple[str, str]]) -> None:
        """Return once the ordered handlers of this process have been given the committed
        ``notifications`` (from :meth:`transactional`), or they cannot be."""
        ...

    #: Whether :meth:`caught_up` has anything to do (False: in-process, nothing to catch).
    needs_catching_up: bool

    async def caught_up(self) -> bool:
        """Return once every message committed (by any process) before the call has been
        given to the ordered handlers; False if that cannot be known (listener lost)."""
        ...

    async def close(self) -> None: ...


class InProcessBroker:
    """One process: publishing is calling the handlers (a commit's message is delivered by
    ``deliver_local``, called in commit order)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    subscribe_ordered = subscribe

    def on_continuity(self, handler: ContinuityHandler) -> None:
        handler(True)  # nothing to miss: no other process

    def publish(self, channel: str, message: str) -> None:
        _dispatch(self._handlers.get(channel, ()), message)

    def transactional(self, channel: str, message: str) -> tuple[str, str] | None:
        return None

    deliver_local = publish

    async def received(self, notifications: list[tuple[str, str]]) -> None:
        """``deliver_local`` gave them to every handler already."""

    needs_catching_up = False

    async def caught_up(self) -> bool:
        return True  # every commit is delivered before it is acknowledged

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
        self._ordered: dict[str, list[Handler]] = {}
        self._continuity: list[ContinuityHandler] = []
        self.origin = os.urandom(6).hex()
        self._sequence = 0
        self._queue: list[tuple[str, str]] = []
        self._wakeup = asyncio.Event()
        self._reassembler = Reassembler()
        self._listener: Any = None
        self._listening = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        #: Own transactional payloads awaited (``received``), and those back before that.
        self._echo_waiters: dict[str, asyncio.Future[None]] = {}
        self._early_echoes: set[str] = set()
        #: Catch-up rounds: the one on the wire, and the one gathering callers for after it.
        self._round: asyncio.Future[bool] | None = None
        self._next_round: asyncio.Future[bool] | None = None
        self._round_task: asyncio.Task[None] | None = None

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

    @property
    def listening(self) -> bool:
        """Whether notifications of other processes are being received."""
        return self._listening.is_set()

    def _check_channel(self, channel: str) -> None:
        if channel not in self._channels:
            raise ValueError(f"channel {channel!r} is not listened to")

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._check_channel(channel)
        self._handlers.setdefault(channel, []).append(handler)

    def subscribe_ordered(self, channel: str, handler: Handler) -> None:
        self._check_channel(channel)
        self._ordered.setdefault(channel, []).append(handler)

    def on_continuity(self, handler: ContinuityHandler) -> None:
        self._continuity.append(handler)
        handler(self.listening)  # the state now: the handler may come after a change

    def publish(self, channel: str, message: str) -> None:
        payloads = encode(self.origin, self._sequence + 1, message)  # MessageTooLarge
        _dispatch(self._handlers.get(channel, ()), message)
        if len(self._queue) >= MAX_QUEUED:
            log.warning("broker queue full: message dropped")
            return
        self._sequence += 1
        self._queue.extend((channel, payload) for payload in payloads)
        self._wakeup.set()

    def transactional(self, channel: str, message: str) -> tuple[str, str] | None:
        self._check_channel(channel)
        self._sequence += 1
        return channel, encode_single(self.origin, self._sequence, message)

    def deliver_local(self, channel: str, message: str) -> None:
        # The ordered handlers get it from LISTEN, in commit order among the other processes'.
        _dispatch(self._handlers.get(channel, ()), message)

    async def received(self, notifications: list[tuple[str, str]]) -> None:
        if not self.listening:  # it will not come back; the ordered handlers know why
            return
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[None]] = []
        for _, payload in notifications:
            if payload in self._early_echoes:
                self._early_echoes.discard(payload)
            else:
                waiting.append(self._echo_waiters.setdefault(payload, loop.create_future()))
        if not waiting:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*waiting), ECHO_TIMEOUT)
        except TimeoutError:
            log.warning("broker: a committed notification did not come back in time")
        finally:
            for _, payload in notifications:
                self._echo_waiters.pop(payload, None)

    needs_catching_up = True

    async def caught_up(self) -> bool:
        if self._listener is None:
            return False
        if self._round is None:  # none on the wire: this caller's round goes now
            self._round = asyncio.get_running_loop().create_future()
            self._round_task = asyncio.create_task(self._catch_up(self._round))
            return await asyncio.shield(self._round)
        if self._next_round is None:  # one is out, sent before this call: wait for the next
            self._next_round = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._next_round)

    async def _catch_up(self, round_: asyncio.Future[bool]) -> None:
        """Run rounds until nobody waits for one."""
        try:
            while True:
                listener = self._listener
                if listener is None:
                    return  # lost: the waiting rounds are told False below
                try:
                    # asyncpg hands each notification to its listener callback (call_soon) as
                    # it parses it, before the query's answer wakes this task: by the time
                    # this returns, every notification sent before the answer was dispatched.
                    answer = await listener.fetchval("SELECT 1", timeout=ECHO_TIMEOUT)
                    caught = answer == 1
                except Exception:  # the connection went: continuity handlers know
                    caught = False
                if not round_.done():
                    round_.set_result(caught and self._listener is listener)
                following, self._next_round = self._next_round, None
                self._round = following
                if following is None:
                    return
                round_ = following
        finally:
            for waiting in (self._round, self._next_round):
                if waiting is not None and not waiting.done():
                    waiting.set_result(False)
            self._round = self._next_round = None

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        self._release_echo_waiters()
        if self._round_task is not None:
            self._round_task.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        self._handlers.clear()
        self._ordered.clear()

    # --- receiving ----------------------------------------------------------------------------

    def _on_notification(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        part = parse(payload)
        if part is None:
            log.warning("ignoring a malformed broker notification")
            return
        own = part.origin == self.origin
        ordered = self._ordered.get(channel)
        if own and not ordered:  # nobody here orders by it: only a waiter may want it
            self._echoed(payload, remember=False)
            return
        message = self._reassembler.add(part)
        if message is None:
            return
        if ordered:
            _dispatch(ordered, message)
        if own:
            self._echoed(payload, remember=True)
        else:
            _dispatch(self._handlers.get(channel, ()), message)

    def _echoed(self, payload: str, *, remember: bool) -> None:
        """This process's notification came back: release its waiter, or (``remember``)
        note it for a waiter still to come."""
        waiter = self._echo_waiters.pop(payload, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        if not remember:
            return
        if len(self._early_echoes) >= MAX_EARLY_ECHOES:  # waiters that went away
            self._early_echoes.clear()
        self._early_echoes.add(payload)

    def _set_continuity(self, receiving: bool) -> None:
        if receiving:
            self._listening.set()
        else:
            self._listening.clear()
            self._release_echo_waiters()
        for handler in self._continuity:
            try:
                handler(receiving)
            except Exception:
                log.exception("broker continuity handler failed")

    def _release_echo_waiters(self) -> None:
        """Nothing more will come back (the listener is lost, or closing)."""
        self._early_echoes.clear()
        for waiter in self._echo_waiters.values():
            if not waiter.done():
                waiter.set_result(None)

    async def _listen_forever(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        attempt = 0
        while not self._closing:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(
                    self._url, server_settings={"application_name": LISTENER_NAME}
                )
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
            self._set_continuity(True)
            await lost.wait()
            self._listener = None
            self._set_continuity(False)
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


async def open_broker(database_url: str) -> Broker:
    """The broker that fits the database: PostgreSQL's LISTEN/NOTIFY, else in-process."""
    if database_url.startswith(("postgresql://", "postgres://")):
        return await PostgresBroker.open(database_url)
    return InProcessBroker()
