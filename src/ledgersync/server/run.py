"""Running the server with uvicorn (``ledgersync serve``), and the transport settings that go
with the app: websockets through the ``websockets`` library with the configured frame limit,
no access log (it would log client addresses), proxy headers only from configured proxies."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .config import ServerConfig
from .logs import configure_logging


def uvicorn_config(config: ServerConfig, app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        ws="websockets-sansio",
        ws_max_size=config.ws_max_frame_bytes,
        access_log=False,
        log_config=None,
        proxy_headers=bool(config.forwarded_allow_ips),
        forwarded_allow_ips=config.forwarded_allow_ips or None,
        server_header=False,
        lifespan="on",
    )


def run(config: ServerConfig) -> None:
    """Serve until interrupted."""
    configure_logging(config.log_level)
    uvicorn.Server(uvicorn_config(config, create_app(config))).run()
