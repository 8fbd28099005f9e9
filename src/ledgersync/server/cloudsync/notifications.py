"""Live notifications: ``ws(s)://<server>/atomic/v1/{slug}/notifications``.

The protocol Ledger Live's CloudSyncSDK speaks (docs/api.md, "Notifications websocket"), all text
frames:

* the client's first frame is its access token (audience ``CloudSync``); the socket then
  listens to every (id, path) the token's permissions grant, for this slug, and the server
  sends the current version of each such document, ``0`` for one that does not exist (the
  SDK's observable "emits the current version once at first"; so a client knows it is
  followed even on an empty document);
* after each committed write the server sends the new version number, in decimal, to every
  socket listening to that document, in whichever process of the deployment it is (the
  storage announces each committed change, :mod:`~ledgersync.server.storage.changes`,
  through the :mod:`~ledgersync.server.broker`); a deletion sends ``0``;
* every ``cloudsync_ping_interval`` seconds the server sends ``ping``; the client answers
  ``pong``; a socket that has not answered by the next ping is closed (1000, ``no pong``);
* when the token expires the server sends ``JWT expired`` and stops notifying; the client
  sends a fresh token (any frame other than ``pong`` is taken as a token) and the
  subscription resumes, starting again with the current versions. A socket without a valid
  token for ``cloudsync_auth_timeout`` seconds is closed (1008);
* an invalid token, or one granting nothing, closes the socket (1008, the reason says why);
  paths whose stream is closed (a key rotation retired them) are not listened to, and a token
  granting only such paths closes the socket (1008, ``path does not match …``);
  binary frames close it with 1003, frames over :data:`MAX_CLIENT_FRAME` bytes with 1009.

One coroutine per socket (the handler, waiting for the client's frames); pings, expiry and
deadlines are driven by one timer task for all sockets (:meth:`NotificationHub.run`), so an
idle subscriber costs its connection and one small object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Coroutine, Iterable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from ...protocol import wire
from ..broker import CLOUDSYNC_CHANNEL, Broker
from ..clock import Clock
from ..errors import JWT_NO_PERMISSION, PATH_DOES_NOT_MATCH
from ..metrics import Metrics
from ..storage import DocumentKey, DocumentStore, DocumentVersion, parse_change
from ..tokens import CLOUD_SYNC_AUDIENCE, TokenError, TokenService
from .access import subscriptions

log = logging.getLogger("ledgersync.cloudsync")

PING = wire.NOTIFY_PING
PONG = wire.NOTIFY_PONG
JWT_EXPIRED = wire.NOTIFY_JWT_EXPIRED
CLOSE_NORMAL = wire.CLOSE_NORMAL
CLOSE_UNSUPPORTED = wire.CLOSE_UNSUPPORTED
CLOSE_POLICY = wire.CLOSE_POLICY
CLOSE_TOO_BIG = wire.CLOSE_TOO_BIG
CLOSE_TRY_AGAIN = 1013
#: Largest frame a client may send (a token is about 1 KB).
MAX_CLIENT_FRAME = 16 * 1024
#: Documents one socket may listen to (one per (id, path) of its token).
MAX_TOPICS = 64
#: Tokens an expired or unauthenticated socket may send in a row without a valid one.
MAX_EXPIRED_TOKENS = 5

Key = tuple[str, str, str]


class Subscriber:
    """One notifications socket."""

    __slots__ = (
        "expired_tokens",
        "expires_at",
        "ping_due",
        "pong_pending",
        "slug",
        "token_deadline",
        "topics",
        "websocket",
    )

    def __init__(self, websocket: WebSocket, slug: str, token_deadline: float) -> None:
        self.websocket = websocket
        self.slug = slug
        self.topics: tuple[Key, ...] = ()
        #: Token expiry (app clock, seconds); 0 while the socket has no valid token.
        self.expires_at = 0.0
        #: Loop time by which a valid token must arrive; None while the token is valid.
        self.token_deadline: float | None = token_deadline
        self.expired_tokens = 0
        self.ping_due = 0.0
        self.pong_pending = False


class NotificationHub:
    """Who listens to which document, in this process; fan-out of versions to them."""

    def __init__(
        self,
        *,
        broker: Broker,
        store: DocumentStore,
        tokens: TokenService,
        clock: Clock,
        metrics: Metrics,
        ping_interval: float,
        auth_timeout: float,
        max_subscribers: int,
    ) -> None:
        self._broker = broker
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._metrics = metrics
        self.ping_interval = ping_interval
        self.auth_timeout = auth_timeout
        self.max_subscribers = max_subscribers
        self._subscribers: set[Subscriber] = set()
        self._topics: dict[Key, set[Subscriber]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        broker.subscribe(CLOUDSYNC_CHANNEL, self.on_change)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # --- receiving ------------------------------------------------------------------------

    def on_change(self, message: str) -> None:
        """A committed change (:mod:`~..storage.changes`), of this process or another: tell
        the subscribers of the document its new version (``0``: deleted)."""
        change = parse_change(message)
        if change is None:
            log.warning("ignoring a malformed notification")
            return
        if isinstance(change, DocumentVersion):
            listeners = self._topics.get((change.slug, change.trustchain_id, change.path))
            if listeners:
                self._tell(listeners, str(change.version))
            return
        # The trustchain was deleted with every document in it: each of its documents' subscribers
        # is told its document is gone (0), as for a deletion of that document alone.
        for (_, trustchain_id, _), listeners in list(self._topics.items()):
            if trustchain_id == change.trustchain_id:
                self._tell(listeners, "0")

    def _tell(self, listeners: Iterable[Subscriber], text: str) -> None:
        now = self._clock()
        for subscriber in listeners:
            if now < subscriber.expires_at:  # an expired one is told so by the timer
                self._send(subscriber, text)
                self._metrics.cloudsync_notifications.inc()

    # --- sockets ----------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket, slug: str) -> None:
        """Run one notifications socket until it closes."""
        if len(self._subscribers) >= self.max_subscribers:
            await websocket.close(code=CLOSE_TRY_AGAIN)
            return
        await websocket.accept()
        # Nothing reads the handshake's headers any more: an idle socket need not keep them.
        websocket.scope["headers"] = []
        loop = asyncio.get_running_loop()
        subscriber = Subscriber(websocket, slug, loop.time() + self.auth_timeout)
        subscriber.ping_due = loop.time() + self.ping_interval
        self._subscribers.add(subscriber)
        self._metrics.cloudsync_subscribers.set(len(self._subscribers))
        try:
            while True:
                # Only the frame's text is kept, and only until it is handled: while the socket
                # waits, nothing holds its last frame (a token).
                text = _text_of(await websocket.receive())
                if text is None:
                    return
                if text == PONG:
                    subscriber.pong_pending = False
                elif not await self._handle_frame(subscriber, text):
                    return
                del text
        finally:
            self._detach(subscriber)
            self._subscribers.discard(subscriber)
            self._metrics.cloudsync_subscribers.set(len(self._subscribers))

    async def _handle_frame(self, subscriber: Subscriber, text: str | _Refusal) -> bool:
        """A frame other than ``pong``: a token, or a refusal to send; False once closed."""
        if isinstance(text, _Refusal):
            await _close(subscriber.websocket, text.code, text.reason)
            return False
        return await self._authenticate(subscriber, text.strip())

    async def _authenticate(self, subscriber: Subscriber, token: str) -> bool:
        """Take ``token`` as the socket's credentials; False if the socket was closed."""
        try:
            claims = self._tokens.verify(token, audience=CLOUD_SYNC_AUDIENCE)
        except TokenError as exc:
            reason = str(exc)
            if not exc.expired:
                await _close(subscriber.websocket, CLOSE_POLICY, reason)
                return False
            subscriber.expired_tokens += 1
            if subscriber.expired_tokens > MAX_EXPIRED_TOKENS:
                await _close(subscriber.websocket, CLOSE_POLICY, reason)
                return False
            self._expire(subscriber)
            return True
        pairs = subscriptions(claims)[:MAX_TOPICS]
        if not pairs:
            await _close(subscriber.websocket, CLOSE_POLICY, JWT_NO_PERMISSION)
            return False
        self._detach(subscriber)
        # Interned: the sockets of one trustchain (or one slug) share these strings.
        subscriber.topics = tuple(
            (sys.intern(subscriber.slug), sys.intern(tid), sys.intern(path)) for tid, path in pairs
        )
        for topic in subscriber.topics:
            self._topics.setdefault(topic, set()).add(subscriber)
        subscriber.expires_at = claims.expires_at
        subscriber.token_deadline = None
        subscriber.expired_tokens = 0
        # Subscribed first, then read: a write committed in between is sent at least once.
        retired: list[Key] = []
        for topic in subscriber.topics:
            if await self._store.closed(topic[1], topic[2]):
                retired.append(topic)
                continue
            # 0 when there is none (as after a deletion): every subscription is answered at
            # once, so that a client knows when it is followed, even on an empty document.
            document = await self._store.get(DocumentKey(*topic))
            self._send(subscriber, "0" if document is None else str(document.version))
        if retired:
            self._detach(subscriber, retired)
            if not subscriber.topics:
                reason = f"{PATH_DOES_NOT_MATCH}: the token's paths are closed (key rotated)"
                await _close(subscriber.websocket, CLOSE_POLICY, reason)
                return False
        return True

    def _expire(self, subscriber: Subscriber) -> None:
        """The token is no longer valid: stop notifying, ask for a new one."""
        subscriber.expires_at = 0.0
        if subscriber.token_deadline is None:
            deadline = asyncio.get_running_loop().time() + self.auth_timeout
            subscriber.token_deadline = deadline
        self._send(subscriber, JWT_EXPIRED)

    def _detach(self, subscriber: Subscriber, topics: list[Key] | None = None) -> None:
        """Stop notifying ``subscriber`` of ``topics`` (default: all of them)."""
        leaving = subscriber.topics if topics is None else topics
        for topic in leaving:
            listeners = self._topics.get(topic)
            if listeners is not None:
                listeners.discard(subscriber)
                if not listeners:
                    del self._topics[topic]
        subscriber.topics = tuple(topic for topic in subscriber.topics if topic not in leaving)

    # --- timers -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Pings, token expiry and token deadlines of every socket, until cancelled."""
        tick = max(0.01, min(1.0, self.ping_interval / 4, self.auth_timeout / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            try:
                self.check(loop.time())
            except Exception:  # the timer must survive anything
                log.exception("notification timer failed")

    def check(self, now_loop: float) -> None:
        now = self._clock()
        for subscriber in list(self._subscribers):
            if subscriber.token_deadline is not None:
                if now_loop >= subscriber.token_deadline:
                    self._close(subscriber, CLOSE_POLICY, "no valid token")
                    continue
            elif now >= subscriber.expires_at:
                self._expire(subscriber)
            if now_loop >= subscriber.ping_due:
                if subscriber.pong_pending:
                    self._close(subscriber, CLOSE_NORMAL, "no pong")
                    continue
                subscriber.pong_pending = True
                subscriber.ping_due = now_loop + self.ping_interval
                self._send(subscriber, PING)

    # --- sending without blocking the hub -----------------------------------------------------

    def _send(self, subscriber: Subscriber, text: str) -> None:
        self._spawn(_send(subscriber.websocket, text))

    def _close(self, subscriber: Subscriber, code: int, reason: str) -> None:
        self._detach(subscriber)
        self._subscribers.discard(subscriber)
        self._spawn(_close(subscriber.websocket, code, reason))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close_all(self) -> None:
        for subscriber in list(self._subscribers):
            self._close(subscriber, 1001, "server shutting down")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _Refusal:
    """A client frame the socket is closed for."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


_NOT_TEXT = _Refusal(CLOSE_UNSUPPORTED, "text frames only")
_TOO_BIG = _Refusal(CLOSE_TOO_BIG, "frame too large")


def _text_of(message: Any) -> str | _Refusal | None:
    """A received ASGI message's text; a refusal for frames that close the socket; None
    once the client has gone."""
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        return _NOT_TEXT
    if len(text) > MAX_CLIENT_FRAME:
        return _TOO_BIG
    assert isinstance(text, str)
    return text


async def _send(websocket: WebSocket, text: str) -> None:
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):  # going away
        await websocket.send_text(text)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    reason = reason.encode()[:120].decode(errors="ignore")  # close reasons: 123 bytes at most
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason)
