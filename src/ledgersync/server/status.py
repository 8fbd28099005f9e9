"""Endpoints about the service itself: ``GET /_info``, ``GET /_health`` and ``GET /metrics``.

``/metrics`` can be protected two ways (docs/server.md, "Metrics"): a bearer token
(``metrics_token``: 401 without ``Authorization: Bearer <token>``), and a listener of its own
(``metrics_address``): :class:`MetricsListener` sends the requests that reached that socket to
an app serving ``/metrics`` only, while the main route table leaves ``/metrics`` out.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .config import ServerConfig
from .errors import Unauthorized
from .http import json_response
from .metrics import CONTENT_TYPE, Metrics

SERVICE_NAME = "ledgersync"

#: Seconds the health check waits for the database before answering 503.
HEALTH_TIMEOUT = 5.0

#: The refusal of ``/metrics`` without its token (never says what the token is).
METRICS_TOKEN_REQUIRED = "missing or wrong Authorization: Bearer <metrics token> header"

log = logging.getLogger("ledgersync.server")


async def info(request: Request) -> Response:
    """Ledger Live polls this to show its "Ledger Sync is down" banner."""
    config: ServerConfig = request.app.state.config
    return json_response({"name": SERVICE_NAME, "version": config.version})


async def metrics(request: Request) -> Response:
    config: ServerConfig = request.app.state.config
    if config.metrics_token and not _bearer_matches(request, config.metrics_token):
        error = Unauthorized(METRICS_TOKEN_REQUIRED)
        error.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        raise error
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # compare_digest: the time taken does not tell how much of the token was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode("utf-8", "surrogateescape"), token.encode()
    )


async def database_answers(state: State) -> bool:
    """Whether the app's database answers a trivial query within :data:`HEALTH_TIMEOUT`."""
    try:
        await asyncio.wait_for(state.storage.database.read_row("SELECT 1"), HEALTH_TIMEOUT)
    except Exception as exc:  # any failure means "do not route traffic here"
        log.warning(
            "health check: the database does not answer", extra={"error": type(exc).__name__}
        )
        return False
    return True


async def health(request: Request) -> Response:
    """For load balancers and orchestrators: 200 when the database answers, else 503."""
    if not await database_answers(request.app.state):
        return json_response({"status": "unavailable", "database": "unavailable"}, status=503)
    return json_response({"status": "ok", "database": "ok"})


class MetricsListener:
    """The ASGI app of a server with two listening sockets: requests that came in on the
    metrics socket (by the local address uvicorn puts in ``scope["server"]``) reach an app
    that serves ``/metrics`` only (anything else: the JSON 404); the others, and the lifespan,
    reach ``app``, whose route table has no ``/metrics`` when ``metrics_address`` is set."""

    def __init__(self, app: Starlette, metrics_socket: tuple[str, int]) -> None:
        self.app = app
        self.state = app.state  # run.uvicorn_config reads the metrics registry from here
        self.metrics_host, self.metrics_port = metrics_socket[0], metrics_socket[1]
        self.metrics_app = Starlette(
            routes=[Route("/metrics", metrics, methods=["GET"])],
            exception_handlers=app.exception_handlers,  # the same JSON errors
        )
        self.metrics_app.state = app.state

    def reached_metrics_socket(self, scope: Scope) -> bool:
        server = scope.get("server") or ("", 0)
        if server[1] != self.metrics_port:
            return False
        # A wildcard bind receives on every address; a specific one only on its own.
        return self.metrics_host in ("0.0.0.0", "::") or server[0] == self.metrics_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan" and self.reached_metrics_socket(scope):
            await self.metrics_app(scope, receive, send)
        else:
            await self.app(scope, receive, send)
