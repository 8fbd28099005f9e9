"""The connection layer under the app: uvicorn's httptools HTTP/1.1 protocol and its websockets
protocol, with the bounds uvicorn leaves out (issue #12).

uvicorn's httptools protocol puts no limit on a request's headers, no deadline on receiving
them or the body; its keep-alive timer starts only after a response and any byte cancels it;
``limit_concurrency`` answers 503 per request but accepts and keeps every connection. Here,
for every connection:

* **headers**: a request line and header fields over ``max_header_bytes`` are answered 431
  and the connection closed, checked as they arrive (a header that never ends is not kept);
* **header deadline**: from a request's first byte, ``header_timeout`` seconds to finish its
  headers, however slowly they trickle in: then 408 and close;
* **body deadline**: from the end of the headers, ``body_timeout`` seconds to finish the
  body: then 408 and close (the app sees its client leave);
* **idle**: a connection with no request in progress (before its first one, or after a
  response) is closed after ``keep_alive_timeout`` seconds, whatever it sends that starts
  no request;
* **limits**: at most ``max_connections`` open connections (HTTP and websockets) and
  ``max_connections_per_client`` from one client address (an IPv6 client is its /64;
  connections from ``forwarded_allow_ips`` proxies count in the total only). A connection
  over a limit closes the longest-idle connection of that scope (an idle keep-alive costs
  its client one reconnection); when none is idle it is answered 503 and closed;
* **open files**: the total is also kept under the open-files limit, leaving room for the
  database and the rest (:func:`connection_capacity`); ``ledgersync serve`` first raises the
  soft limit to the hard one (:func:`raise_open_files_limit`).

The websocket protocol (websockets' sans-I/O implementation) is adapted as well: no
permessage-deflate (tiny frames; its zlib state is most of an idle socket's memory), the
handshake's request and response dropped once answered, lighter stand-ins for its queue
and event, no protocol-level keepalive on Cloud Sync notification sockets (the app pings
them), a handshake
the websockets library refuses (a request line over 8 KiB, too many headers…) is answered and
closed instead of left hanging; a text frame that is not UTF-8 closes the socket with 1007,
without a traceback. And no client address, request path (the QR room key) or frame (tokens)
is logged: uvicorn logs ``<address> - "WebSocket <path>" [accepted]`` at info level and its
trace lines start with the address (:class:`NoClientAddresses` drops those), and websockets
logs the handshake and every frame at debug level (turned off). The app's request log says
what happened, with the client's address only when ``log_client_ip`` is set.

One :class:`ConnectionGuard` per server, shared by its protocol classes (made by
:func:`protocol_classes` and handed to uvicorn by :func:`~ledgersync.server.run.uvicorn_config`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.server import ServerProtocol

from .config import ServerConfig
from .metrics import Metrics

log = logging.getLogger("ledgersync.transport")

#: Bytes of a request line besides its target (``DELETE `` and `` HTTP/1.1\r\n``), and of a
#: header line besides its name and value (``: `` and ``\r\n``), for counting header bytes.
_REQUEST_LINE_OVERHEAD = 18
_HEADER_LINE_OVERHEAD = 4


# --- limits -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float


def client_key(address: str) -> str:
    """Whose connection this is, for the per-client limit: the IPv4 address, or the /64 of
    an IPv6 address (one subscriber line usually gets a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


def trusted_proxies(spec: str) -> Callable[[str], bool]:
    """``forwarded_allow_ips`` (comma-separated addresses or networks, or ``*``) as a test."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if "*" in items:
        return lambda address: True
    networks = []
    literals = set()
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            literals.add(item)

    def trusted(address: str) -> bool:
        if address in literals:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    return trusted


def open_files_limit() -> int | None:
    """The soft limit on open files, None if unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_capacity(max_connections: int, files: int | None) -> int:
    """Connections the server may hold with ``files`` descriptors: ``max_connections``, but
    leaving a quarter of the descriptors (at least 64, at most 1,024) for the database, the
    listening socket, the bursts of connections asyncio accepts before they reach a protocol,
    and the rest."""
    if files is None:
        return max_connections
    reserve = min(1024, max(64, files // 4))
    return max(1, min(max_connections, files - reserve))


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard one (systemd starts services with a soft
    limit of 1,024, far below the hard one); returns the (soft, hard) limits now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:  # e.g. above the kernel's nr_open
            log.warning("cannot raise the open-files limit to %d (%s)", target, exc)
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --- who is connected ---------------------------------------------------------------------------

_UNKNOWN: Any = object()


class ConnectionGuard:
    """The open connections of one server: how many in all and per client, which ones are
    idle (in the order they became so), and whom to close when a limit is reached.

    A connection is anything with a ``close_idle()`` method (the protocols below); the guard
    only ever calls it on an idle one. Everything runs on the server's event loop."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_per_client: int,
        exempt: Callable[[str], bool],
        metrics: Metrics | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self._exempt = exempt
        self._metrics = metrics
        self._open: dict[Any, str | None] = {}  # connection -> client key (None: not counted)
        self._per_client: dict[str, int] = {}
        #: Idle connections -> their client key, in the order they became idle.
        self._idle: dict[Any, str | None] = {}
        self._idle_per_client: dict[str, dict[Any, None]] = {}

    @property
    def open_count(self) -> int:
        return len(self._open)

    def admit(self, connection: Any, address: str | None) -> str | None:
        """Count a new connection in, closing an idle one if a limit is reached; the reason
        it is refused instead (it is then not counted)."""
        key = None if address is None or self._exempt(address) else client_key(address)
        at_client_limit = key is not None and self._per_client.get(key, 0) >= self.max_per_client
        if at_client_limit and not self._close_longest_idle(self._idle_per_client.get(key or "")):
            self.count("refused_per_client")
            return "too many connections from this address"
        at_limit = len(self._open) >= self.max_connections
        if at_limit and not self._close_longest_idle(self._idle):
            self.count("refused_limit")
            return "too many connections"
        self._open[connection] = key
        if key is not None:
            self._per_client[key] = self._per_client.get(key, 0) + 1
        self._gauge()
        return None

    def idle(self, connection: Any) -> None:
        """``connection`` has no request in progress: it may be closed to make room."""
        key = self._open.get(connection, _UNKNOWN)
        if key is _UNKNOWN:
            return
        self.busy(connection)  # re-inserted below: idle since now, the last in order
        self._idle[connection] = key
        if key is not None:
            self._idle_per_client.setdefault(key, {})[connection] = None

    def busy(self, connection: Any) -> None:
        key = self._idle.pop(connection, _UNKNOWN)
        if key is _UNKNOWN or key is None:
            return
        pool = self._idle_per_client[key]
        del pool[connection]
        if not pool:
            del self._idle_per_client[key]

    def hand_over(self, old: Any, new: Any) -> None:
        """The connection is now driven by another protocol (a websocket upgrade)."""
        if old not in self._open:
            return
        self.busy(old)
        self._open[new] = self._open.pop(old)

    def release(self, connection: Any) -> None:
        """The connection is closed (or closing); idempotent."""
        if connection not in self._open:
            return
        self.busy(connection)
        key = self._open.pop(connection)
        if key is not None:
            remaining = self._per_client[key] - 1
            if remaining:
                self._per_client[key] = remaining
            else:
                del self._per_client[key]
        self._gauge()

    def _close_longest_idle(self, pool: dict[Any, Any] | None) -> bool:
        if not pool:
            return False
        victim = next(iter(pool))
        self.release(victim)
        victim.close_idle()
        self.count("evicted_idle")
        return True

    def count(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.connections_closed.labels(reason).inc()

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.connections_open.set(len(self._open))


# --- HTTP ---------------------------------------------------------------------------------------


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing (httptools re-raises it wrapped)."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, counted by a :class:`ConnectionGuard` and bounded by
    :class:`Limits`.

    One deadline per connection at a time (idle, headers or body) and one timer serving it:
    moving a deadline later only records it, and a timer that fires early re-arms itself, so
    a busy keep-alive connection creates about one timer per ``keep_alive_timeout`` rather
    than several per request. The header and body deadlines are armed only when a read ends
    with the headers or the body still incomplete (most requests arrive in one read), and
    the bookkeeping is done once per read rather than in the parser's per-message callbacks
    (this runs for every request: it is kept small)."""

    guard: ClassVar[ConnectionGuard]
    limits: ClassVar[Limits]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        #: What happens at ``_deadline_at`` (loop time): "idle", "headers", "body" or None.
        self._deadline: str | None = None
        self._deadline_at = 0.0
        #: Between a request's first byte and the end of its headers; when they are due.
        self._in_headers = False
        self._headers_due = 0.0
        #: Bytes of whole reads that arrived while the headers were incomplete.
        self._header_reads = 0
        self._began_in_this_read = False
        self._read_size = 0
        self._too_large = False
        #: The request whose body is still arriving (timed by the "body" deadline).
        self._body_cycle: RequestResponseCycle | None = None

    # --- connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        refusal = self.guard.admit(self, self.client[0] if self.client else None)
        if refusal is not None:
            log.debug("connection refused: %s", refusal)
            self._answer_and_close(503, refusal)
            return
        self._now_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        self.guard.release(self)
        super().connection_lost(exc)

    def close_idle(self) -> None:
        """Called by the guard to make room."""
        self._stop_timer()
        self.transport.close()

    def handle_websocket_upgrade(self) -> None:
        self._stop_timer()
        super().handle_websocket_upgrade()
        self.guard.hand_over(self, self.transport.get_protocol())

    # --- reading ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with 431 for headers over the limit (a callback raises
        # _HeadersTooLarge, which httptools wraps in HttpParserCallbackError), then the
        # deadlines of whatever this read left incomplete.
        self._unset_keepalive_if_required()
        self._began_in_this_read = False
        self._read_size = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._too_large:
                self._headers_too_large()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_headers:  # incomplete after this read: too long already? due when?
            if not self._began_in_this_read:
                self._header_reads += len(data)
            if max(self._header_bytes(), self._header_reads) > self.limits.max_header_bytes:
                self._headers_too_large()
                return
            if self._deadline != "headers":
                self._set_deadline("headers", self._headers_due)
            return
        current = self.cycle
        if (
            current is not None
            and current.more_body
            and current is not self._body_cycle
            and not current.response_complete
            and not self.pipeline  # a queued request is timed once started
        ):
            self._time_body(current)

    def _header_bytes(self) -> int:
        """The request line and header lines received so far (complete ones), in bytes."""
        lines = sum(len(name) + len(value) for name, value in self.headers)
        return (
            _REQUEST_LINE_OVERHEAD
            + len(self.url)
            + lines
            + _HEADER_LINE_OVERHEAD * len(self.headers)
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.guard.busy(self)
        self._deadline = None  # not idle any more; the header deadline is set after the read
        self._in_headers = True
        self._began_in_this_read = True
        self._header_reads = 0
        self._headers_due = self.loop.time() + self.limits.header_timeout

    def on_headers_complete(self) -> None:
        self._in_headers = False
        if self._deadline == "headers":
            self._deadline = None
        limit = self.limits.max_header_bytes
        # Headers begun and ended within one read are no longer than it: count them only
        # if the read itself is over the limit (most requests come in one small read).
        within_one_small_read = self._began_in_this_read and self._read_size <= limit
        if not within_one_small_read and self._header_bytes() > limit:
            self._too_large = True
            raise _HeadersTooLarge
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self._body_cycle  # None unless the body took more than one read
        if cycle is not None and cycle is self.cycle:
            self._body_cycle = None
            if self._deadline == "body":
                self._deadline = None
            if cycle.response_complete and not self.transport.is_closing():
                self._now_idle()  # answered before its body ended (413…): idle only now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or self._in_headers or self._body_cycle is not None:
            return  # closing, the next request's headers are coming, or the body still is
        current = self.cycle
        if current is not None and not current.response_complete:  # a pipelined request
            if current.more_body:  # was started: its body is still to come
                self._time_body(current)
            return
        self._now_idle()

    def _time_body(self, cycle: RequestResponseCycle) -> None:
        self._body_cycle = cycle
        self._set_deadline("body", self.loop.time() + self.limits.body_timeout)

    # --- deadlines and refusals ---------------------------------------------------------

    def _now_idle(self) -> None:
        self.guard.idle(self)
        self._set_deadline("idle", self.loop.time() + self.limits.keep_alive_timeout)

    def _set_deadline(self, kind: str, at: float) -> None:
        self._deadline, self._deadline_at = kind, at
        if self._timer is None or self._timer_at > at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = self.loop.call_at(at, self._on_timer), at

    def _on_timer(self) -> None:
        self._timer = None
        kind = self._deadline
        if kind is None or self.transport.is_closing():
            return
        if self.loop.time() < self._deadline_at:  # the deadline moved on: wait for it
            self._timer = self.loop.call_at(self._deadline_at, self._on_timer)
            self._timer_at = self._deadline_at
            return
        self._deadline = None
        if kind == "idle":
            self.guard.count("idle")
            self.transport.close()
        elif kind == "headers":
            self._headers_late()
        else:
            self._body_late()

    def _stop_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_late(self) -> None:
        self.guard.count("header_timeout")
        log.debug("request headers not received within %s s", self.limits.header_timeout)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a pipelined request is still being answered
        else:
            self._answer_and_close(408, "request headers not received in time")

    def _body_late(self) -> None:
        cycle, self._body_cycle = self._body_cycle, None
        self.guard.count("body_timeout")
        log.debug("request body not received within %s s", self.limits.body_timeout)
        if cycle is None or cycle.response_started:
            self.transport.close()
            return
        cycle.disconnected = True  # the app's receive() says so; its writes go nowhere
        cycle.message_event.set()
        self._answer_and_close(408, "request body not received in time")

    def _headers_too_large(self) -> None:
        self.guard.count("headers_too_large")
        self._answer_and_close(
            431, f"request line and headers exceed {self.limits.max_header_bytes} bytes"
        )

    def _answer_and_close(self, status: int, text: str) -> None:
        self._stop_timer()
        body = text.encode("ascii")
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + body)
            self.transport.close()


# --- websockets ---------------------------------------------------------------------------------


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets (sans-I/O) protocol: counted by the guard after the upgrade,
    refused handshakes answered, invalid UTF-8 closed quietly, no frames in the logs."""

    guard: ClassVar[ConnectionGuard]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # No permessage-deflate: the frames are a few bytes (versions, pings, QR messages of
        # a few hundred), and a compressor and decompressor cost each socket about 40 KiB.
        # websockets logs the handshake request (the QR room key is in its URL) and every
        # frame (tokens, pairing messages) at debug level: never here.
        self.conn = ServerProtocol(
            extensions=[], max_size=config.ws_max_size, logger=logging.getLogger("uvicorn.error")
        )
        self.conn.debug = False
        # Lighter stand-ins for the asyncio.Queue and asyncio.Event uvicorn gives each socket
        # (same calls; every idle socket has one of each).
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        self.writable.set()

    def start_keepalive(self) -> None:
        # Cloud Sync notification sockets are pinged by the app (``ping``/``pong`` text
        # frames, the protocol Ledger Live speaks), which also closes the silent ones: the
        # protocol-level keepalive would only add a timer to every idle subscriber and a
        # second ping every ``ws_ping_interval``.
        if not _APP_PINGED.fullmatch(self.scope["path"]):
            super().start_keepalive()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # The handshake's request and response are not needed once it is answered: an
            # idle subscriber keeps only what it uses. websockets' parser (a generator) keeps
            # the request as a local for the socket's whole life: its headers are emptied.
            self.request.headers.clear()
            self.request = self.response = None  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if (
            not self.handshake_initiated
            and self.conn.handshake_exc is not None
            and not self.transport.is_closing()
        ):
            # websockets refused the request before it reached uvicorn (a request line over
            # 8 KiB, too many or too long headers…): its answer is ready, send it.
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                data.decode()
            except UnicodeDecodeError:  # uvicorn would log a traceback; a client error
                self.frames = []
                log.debug("websocket text frame is not UTF-8: closed with 1007")
                self.conn.send_close(1007, "invalid UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()


#: Websocket paths whose app pings its clients itself (Cloud Sync notifications).
_APP_PINGED = re.compile(r"/atomic/v1/[^/]+/notifications")


class _Inbox:
    """What uvicorn's websocket protocol uses of an ``asyncio.Queue`` (one consumer: the app's
    ``receive``), without its three deques."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class _Flag:
    """What uvicorn's websocket protocol uses of an ``asyncio.Event``, without its deque."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        while not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


# --- logs ---------------------------------------------------------------------------------------


class NoClientAddresses(logging.Filter):
    """Drops uvicorn's log lines that begin with the client's address: the websocket access
    lines (``<address> - "WebSocket <path with query>" [accepted]``) and the trace lines
    (``<address>:<port> - HTTP connection made``…). Every such template starts with ``%s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("%s") and record.args)


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, NoClientAddresses) for existing in logger.filters):
        logger.addFilter(NoClientAddresses())


# --- assembly -----------------------------------------------------------------------------------


def protocol_classes(
    config: ServerConfig, metrics: Metrics | None = None
) -> tuple[type[GuardedHttpProtocol], type[GuardedWebSocketProtocol]]:
    """The HTTP and websocket protocol classes of one server, sharing one guard."""
    install_log_filter()
    files = open_files_limit()
    capacity = connection_capacity(config.max_connections, files)
    if capacity < config.max_connections:
        log.warning(
            "at most %d connections at once: the open-files limit is %s "
            "(LEDGERSYNC_MAX_CONNECTIONS is %d)",
            capacity,
            files,
            config.max_connections,
        )
    guard = ConnectionGuard(
        max_connections=capacity,
        max_per_client=config.max_connections_per_client,
        exempt=trusted_proxies(config.forwarded_allow_ips),
        metrics=metrics,
    )
    limits = Limits(
        max_header_bytes=config.max_header_bytes,
        header_timeout=config.header_timeout,
        body_timeout=config.body_timeout,
        keep_alive_timeout=config.keep_alive_timeout,
    )

    class HttpProtocol(GuardedHttpProtocol):
        pass

    class WebSocketProtocol(GuardedWebSocketProtocol):
        pass

    HttpProtocol.guard, HttpProtocol.limits = guard, limits
    WebSocketProtocol.guard = guard
    return HttpProtocol, WebSocketProtocol
