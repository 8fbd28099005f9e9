"""Endpoints about the service itself: ``GET /_info`` and ``GET /metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .config import ServerConfig
from .http import json_response
from .metrics import CONTENT_TYPE, Metrics

SERVICE_NAME = "ledgersync"


async def info(request: Request) -> Response:
    """Ledger Live polls this to show its "Ledger Sync is down" banner."""
    config: ServerConfig = request.app.state.config
    return json_response({"name": SERVICE_NAME, "version": config.version})


async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
