"""Running the server with uvicorn (``ledgersync serve``), and the transport settings that go
with the app: HTTP through httptools and websockets through the ``websockets`` library, both
bounded by :mod:`~ledgersync.server.transport` (header size, header and body deadlines, idle
connections, connection limits) with the configured frame limit; no access log (it would
log client addresses), proxy headers only from configured proxies. ``run`` raises the soft
open-files limit to the hard one first."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import math
import os
import socket
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE

from .accept import Listener
from .app import create_app
from .config import LEDGER_PROD_ATTESTATION_KEY, LEDGER_TEST_ATTESTATION_KEY, ServerConfig
from .keys import load_or_create_keys
from .logs import configure_logging
from .metrics import Metrics
from .status import MetricsListener
from .storage import open_storage
from .storage.database import SQLITE_PREFIX
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


def bind_listening_socket(config: ServerConfig) -> socket.socket:
    """Bind ``config.host:config.port`` (before anything says the server started), or raise
    :class:`StartupError` saying which setting picks another port or address."""
    return bind_socket(
        config.host,
        config.port,
        port_setting="--port or LEDGERSYNC_PORT",
        address_setting="--host/--port or LEDGERSYNC_HOST/LEDGERSYNC_PORT",
    )


def bind_metrics_socket(config: ServerConfig) -> socket.socket | None:
    """The metrics listener's socket when ``metrics_address`` is set (else None)."""
    if config.metrics_listen is None:
        return None
    host, port = config.metrics_listen
    setting = "--metrics-address or LEDGERSYNC_METRICS_ADDRESS"
    return bind_socket(host, port, port_setting=setting, address_setting=setting)


def bind_socket(host: str, port: int, *, port_setting: str, address_setting: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except (OSError, OverflowError) as exc:
        listening.close()
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use by another program; "
                f"choose another port with {port_setting}"
            ) from exc
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StartupError(
            f"cannot listen on {host}:{port} ({reason}); choose another address with "
            f"{address_setting}"
        ) from exc
    listening.set_inheritable(True)
    return listening


class _Server(uvicorn.Server):
    """uvicorn's server on the sockets ``run`` bound, each served by a
    :class:`~ledgersync.server.accept.Listener` (every waiting connection accepted at once,
    where the loop's own server takes one per iteration), saying where it listens."""

    banner: ServerConfig | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is None:  # uvicorn binds its own socket (not how ``run`` starts it)
            await super().startup()
            return
        # uvicorn's startup for given sockets, with our listeners in place of the loop's
        # servers (uvicorn only closes and awaits them at shutdown).
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        freeze_startup_objects()
        config, state, app_state = self.config, self.server_state, self.lifespan.state

        def create_protocol() -> asyncio.Protocol:
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=state, app_state=app_state
            )
            return protocol

        listeners = [Listener(each, create_protocol, backlog=config.backlog) for each in sockets]
        for listener in listeners:
            listener.start()
        self.servers = listeners  # type: ignore[assignment]
        self.started = True
        if not self.should_exit:
            self._log_started_message(sockets)
            if len(sockets) > 1:
                log.info(
                    "metrics served on their own listener", extra={"address": _address(sockets[1])}
                )
            if self.banner is not None:
                port = sockets[0].getsockname()[1]
                metrics = _address(sockets[1]) if len(sockets) > 1 else None
                sys.stderr.write(startup_banner(self.banner, port, metrics_address=metrics))
                sys.stderr.flush()


def freeze_startup_objects() -> None:
    """Leave what start-up made (modules, the application, its connections: it lives as long
    as the process) out of the garbage collector's generations. Otherwise each full
    collection walks all of it again: 20-40 ms each on a busy server, some twenty times a
    minute, every request in flight waiting (the tail of p99, docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


def _address(listening: socket.socket) -> str:
    host, port = listening.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def text_logs(config: ServerConfig) -> bool:
    """Whether ``ledgersync serve`` writes for a person (banner, text lines) or for a log
    collector (JSON lines)."""
    if config.log_format == "auto":
        return sys.stderr.isatty()
    return config.log_format == "text"


def _attestation_summary(config: ServerConfig) -> str:
    names = {LEDGER_PROD_ATTESTATION_KEY: "Ledger PROD", LEDGER_TEST_ATTESTATION_KEY: "Ledger TEST"}
    trusted = [names.get(key, key.hex()) for key in config.trusted_attestation_keys]
    note = ""
    if LEDGER_TEST_ATTESTATION_KEY in config.trusted_attestation_keys:
        note = (
            " (TEST is public: set LEDGERSYNC_PROD_ATTESTATION_ONLY=true for genuine devices only)"
        )
    return ", ".join(trusted) + note


def _database_summary(config: ServerConfig) -> str:
    database = sqlite_path(config)
    if database is not None:
        return f"SQLite {os.path.abspath(database)}"
    parts = urlsplit(config.database)
    user = f"{parts.username}@" if parts.username else ""  # never the password
    port = f":{parts.port}" if parts.port else ""
    return f"PostgreSQL {parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


def _metrics_summary(config: ServerConfig, metrics_address: str | None) -> str:
    if not config.metrics:
        return "off (LEDGERSYNC_METRICS=false)"
    where = f"http://{metrics_address}/metrics" if metrics_address else "GET /metrics"
    # Only whether a token is needed: the token itself is never printed.
    return where + (", bearer token required" if config.metrics_token else "")


def startup_banner(config: ServerConfig, port: int, *, metrics_address: str | None = None) -> str:
    """What a person at a terminal reads once the server listens."""
    host = f"[{config.host}]" if ":" in config.host else config.host
    base = config.public_url.rstrip("/")
    lines = [
        "",
        f"ledgersync {config.version}: the Key Ring API and the Cloud Sync API",
        f"  listening on    http://{host}:{port}",
        f"  public URL      {base}",
        f"  database        {_database_summary(config)}",
        f"  key file        {os.path.abspath(config.key_file)}",
        f"  trusted devices {_attestation_summary(config)}",
        "  Ledger Live     the same base URL for both APIs:",
        f"                  TRUSTCHAIN_API_PROD={base} CLOUD_SYNC_API_PROD={base}",
        f"  in a browser    {base}/ (version, health, endpoints, these settings)",
        f"  metrics         {_metrics_summary(config, metrics_address)}",
        "  health check    GET /_health; JSON logs: --log-format json. Stop with Ctrl-C.",
        "",
    ]
    return "\n".join(lines) + "\n"


def _default(name: str) -> object:
    return ServerConfig.__dataclass_fields__[name].default


def sqlite_path(config: ServerConfig) -> Path | None:
    """The SQLite database file of ``config`` (relative to the working folder), or None."""
    if not config.database.startswith(SQLITE_PREFIX):
        return None
    return Path(config.database.removeprefix(SQLITE_PREFIX))


def _check_folder(path: Path, default: bool, what: str, setting: str) -> None:
    """Only the default data folder is created; a folder the operator named must exist."""
    folder = path.parent
    if default or folder.is_dir():
        return
    state = "is not a folder" if folder.exists() else "does not exist"
    raise StartupError(
        f"the {what}'s folder {os.path.abspath(folder)} {state}; create it, "
        f"or choose another path with {setting}"
    )


async def _preflight(config: ServerConfig) -> None:
    database = sqlite_path(config)
    database_setting = (
        "--database or LEDGERSYNC_DATABASE "
        "(sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite)"
    )
    if database is not None:
        default = config.database == _default("database")
        _check_folder(database, default, "database", database_setting)
    _check_folder(
        config.key_file, config.key_file == _default("key_file"), "key file", "LEDGERSYNC_KEY_FILE"
    )
    load_or_create_keys(config.key_file)
    try:
        storage = await open_storage(config.database)
    except (OSError, sqlite3.Error) as exc:
        if database is None:
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StartupError(
            f"cannot open the SQLite database {os.path.abspath(database)} ({reason}); "
            f"check that its folder is writable, or choose another file with {database_setting}"
        ) from exc
    await storage.close()


def run(config: ServerConfig) -> None:
    """Serve until interrupted (Ctrl-C is a normal way to stop: no traceback, exit status 0).

    The key file and the database are opened once before uvicorn starts, so that a
    deployment mistake is reported in one sentence (:class:`StartupError`), not as the
    traceback uvicorn prints for a failed application startup.
    """
    text = text_logs(config)
    configure_logging(config.log_level, text=text)
    soft, hard = raise_open_files_limit()
    log.info("open-files limit", extra={"soft": soft, "hard": hard})
    listening = [bind_listening_socket(config)]
    try:
        metrics_socket = bind_metrics_socket(config)
        if metrics_socket is not None:
            listening.append(metrics_socket)
        try:
            asyncio.run(_preflight(config))
        except StartupError:
            raise
        except Exception as exc:  # any cause: the message is what the operator needs
            raise StartupError(f"{type(exc).__name__}: {exc}") from exc
        app = create_app(config)
        served: ASGIApp = app
        if metrics_socket is not None:  # a second listener of the same server: /metrics only
            served = MetricsListener(app, metrics_socket.getsockname()[:2])
        server = _Server(uvicorn_config(config, served))
        server.banner = config if text else None
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT after shutdown
            server.run(sockets=listening)
    finally:
        for each in listening:
            each.close()
