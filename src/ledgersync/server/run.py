"""Running the server with uvicorn (``ledgersync serve``), and the transport settings that go
with the app: websockets through the ``websockets`` library with the configured frame limit,
no access log (it would log client addresses), proxy headers only from configured proxies."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .config import ServerConfig
from .keys import load_or_create_keys
from .logs import configure_logging
from .storage import open_storage


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
    try:
        asyncio.run(_preflight(config))
    except Exception as exc:  # any cause: the message is what the operator needs
        raise StartupError(f"{type(exc).__name__}: {exc}") from exc
    server = uvicorn.Server(uvicorn_config(config, create_app(config)))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT after shutdown
        server.run()
