"""Endpoints about the service itself: ``GET /_info`` and ``GET /metrics``."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response

from .config import ServerConfig
from .http import json_response
from .metrics import CONTENT_TYPE, Metrics

SERVICE_NAME = "ledgersync"

#: Seconds the health check waits for the database before answering 503.
HEALTH_TIMEOUT = 5.0

log = logging.getLogger("ledgersync.server")


async def info(request: Request) -> Response:
    """Ledger Live polls this to show its "Ledger Sync is down" banner."""
    config: ServerConfig = request.app.state.config
    return json_response({"name": SERVICE_NAME, "version": config.version})


async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)


async def health(request: Request) -> Response:
    """For load balancers and orchestrators: 200 when the database answers, else 503."""
    try:
        await asyncio.wait_for(
            request.app.state.storage.database.read_row("SELECT 1"), HEALTH_TIMEOUT
        )
    except Exception as exc:  # any failure means "do not route traffic here"
        log.warning(
            "health check: the database does not answer", extra={"error": type(exc).__name__}
        )
        return json_response({"status": "unavailable", "database": "unavailable"}, status=503)
    return json_response({"status": "ok", "database": "ok"})
