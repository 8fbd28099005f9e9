"""One ASGI middleware that times every request, counts it in the metrics and logs it.

Per request it does little: the metric children of each (method, route, status) are looked
up once and kept, and the log line goes through :func:`~.logs.request_lines` when the
logging configuration allows it (a plain log record otherwise)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import REQUESTS_LOGGER, request_lines
from .metrics import Metrics

log = logging.getLogger(REQUESTS_LOGGER)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class _ObservedSend:
    """The app's ``send``, noting the response's status (or the websocket's close code). One
    small object per request (a websocket keeps it for its whole life)."""

    __slots__ = ("_send", "_websocket", "status")

    def __init__(self, send: Send, scope_type: str) -> None:
        self._send = send
        self._websocket = scope_type == "websocket"
        self.status = 101 if self._websocket else 500

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
        elif kind == "websocket.close" and self._websocket:
            self.status = message.get("code", 1000)
        await self._send(message)


class RequestObserver:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, log_client_ip: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_client_ip = log_client_ip
        #: (method, route, status) -> the request counter's child; route -> duration's.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = _ObservedSend(send, scope["type"])
        try:
            await self.app(scope, receive, observed)
        finally:
            self._record(scope, observed.status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, duration: float) -> None:
        route = route_template(scope)
        method = scope.get("method", "WEBSOCKET")
        if scope["type"] == "http":
            counter = self._counters.get((method, route, status))
            if counter is None:
                counter = self.metrics.http_requests.labels(method, route, str(status))
                self._counters[(method, route, status)] = counter
            counter.inc()
            timer = self._durations.get(route)
            if timer is None:
                timer = self._durations[route] = self.metrics.http_duration.labels(route)
            timer.observe(duration)
        duration_ms = round(duration * 1000, 2)
        client = scope["client"][0] if self.log_client_ip and scope.get("client") else None
        lines = request_lines()
        if lines is not None:
            lines.write(method, route, status, duration_ms, client)
            return
        entry: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
        }
        if client is not None:
            entry["client"] = client
        log.info("request", extra=entry)
