"""One ASGI middleware that times every request, counts it in the metrics and logs it."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

log = logging.getLogger("ledgersync.requests")


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestObserver:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, log_client_ip: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_client_ip = log_client_ip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500 if scope["type"] == "http" else 101}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "websocket.close" and scope["type"] == "websocket":
                status["code"] = message.get("code", 1000)
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._record(scope, status["code"], time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, duration: float) -> None:
        route = route_template(scope)
        method = scope.get("method", "WEBSOCKET")
        if scope["type"] == "http":
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_duration.labels(route).observe(duration)
        entry: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
        }
        if self.log_client_ip and scope.get("client"):
            entry["client"] = scope["client"][0]
        log.info("request", extra=entry)
