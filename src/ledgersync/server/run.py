"""Running the server with uvicorn (``ledgersync serve``), and the transport settings that go
with the app: HTTP through httptools and websockets through the ``websockets`` library, both
bounded by :mod:`~ledgersync.server.transport` (header size, header and body deadlines, idle
connections, connection limits) with the configured frame limit; no access log (it would
log client addresses), proxy headers only from configured proxies. ``run`` raises the soft
open-files limit to the hard one first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .config import ServerConfig
from .keys import load_or_create_keys
from .logs import configure_logging
from .metrics import Metrics
from .storage import open_storage
from .transport import protocol_classes, raise_open_files_limit

log = logging.getLogger("ledgersync.server")


def uvicorn_config(config: ServerConfig, app: ASGIApp) -> uvicorn.Config:
    metrics = getattr(getattr(app, "state", None), "metrics", None)
    http, websocket = protocol_classes(config, metrics if isinstance(metrics, Metrics) else None)
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=http,
        ws=websocket,
        ws_max_size=config.ws_max_frame_bytes,
        # uvicorn's own keep-alive timer (after a response, reset by any byte); the transport
        # layer's idle deadline is the one that holds.
        timeout_keep_alive=max(1, math.ceil(config.keep_alive_timeout)),
        access_log=False,
        log_config=None,
        proxy_headers=bool(config.forwarded_allow_ips),
        forwarded_allow_ips=config.forwarded_allow_ips or None,
        server_header=False,
        lifespan="on",
    )


class StartupError(Exception):
    """The server cannot start (database unreachable, key file unreadable…); says why."""


async def _preflight(config: ServerConfig) -> None:
    load_or_create_keys(config.key_file)
    storage = await open_storage(config.database)
    await storage.close()


def run(config: ServerConfig) -> None:
    """Serve until interrupted (Ctrl-C is a normal way to stop: no traceback, exit status 0).

    The key file and the database are opened once before uvicorn starts, so that a
    deployment mistake is reported in one sentence (:class:`StartupError`), not as the
    traceback uvicorn prints for a failed application startup.
    """
    configure_logging(config.log_level)
    soft, hard = raise_open_files_limit()
    log.info("open-files limit", extra={"soft": soft, "hard": hard})
    try:
        asyncio.run(_preflight(config))
    except Exception as exc:  # any cause: the message is what the operator needs
        raise StartupError(f"{type(exc).__name__}: {exc}") from exc
    server = uvicorn.Server(uvicorn_config(config, create_app(config)))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT after shutdown
        server.run()
