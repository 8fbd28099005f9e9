"""The application factory: one ASGI app serving the Key Ring API and the Cloud Sync API.

``create_app(config)`` builds the app from arguments only (no globals). Its lifespan loads
(or creates) the server keys, opens the storage and applies migrations, then publishes the
shared services on ``app.state``:

* ``app.state.config``: :class:`~ledgersync.server.config.ServerConfig`;
* ``app.state.clock``: the :data:`~ledgersync.server.clock.Clock`;
* ``app.state.metrics``: :class:`~ledgersync.server.metrics.Metrics`;
* ``app.state.storage``: :class:`~ledgersync.server.storage.Storage`;
* ``app.state.tokens``: :class:`~ledgersync.server.tokens.TokenService` (verify any token);
* ``app.state.keyring``: the Key Ring API's :class:`~ledgersync.server.keyring.context.KeyRing`;
* ``app.state.broker``: the :mod:`~ledgersync.server.broker` between server processes
  (PostgreSQL LISTEN/NOTIFY, or in-process with SQLite);
* ``app.state.cloudsync``: the Cloud Sync API's
  :class:`~ledgersync.server.cloudsync.context.CloudSync` (its notification timer runs as a
  task of the lifespan).

Errors are mapped in one place: :class:`~ledgersync.server.errors.ApiError` becomes its JSON
body, unknown routes a JSON 404, anything unexpected a JSON 500 without details. A client
that goes away before its request body has arrived (Starlette's ``ClientDisconnect``) is no
server error: it is logged at info and counted with status 499 (nginx's "client closed
request"); nothing can be answered to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .broker import Broker, PostgresBroker, open_broker
from .clock import Clock, system_clock
from .cloudsync.context import BrokerFeed, CloudSync
from .config import ServerConfig
from .errors import NO_SUCH_ENDPOINT, ApiError, error_body
from .keyring.context import KeyRing
from .keyring.qr import QrRelay
from .keyring.qr_shared import SharedRooms
from .keys import load_or_create_keys
from .metrics import Metrics
from .observability import RequestObserver
from .routes import routes
from .storage import RelaySeatStore, Storage, open_storage
from .tokens import TokenService

log = logging.getLogger("ledgersync.server")

#: The status recorded for a request whose client disconnected before it was read (nginx).
CLIENT_CLOSED_REQUEST = 499


def create_app(config: ServerConfig, *, clock: Clock = system_clock) -> Starlette:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        keys = load_or_create_keys(config.key_file)
        storage = await open_storage(config.database)
        tokens = TokenService(
            keys.token_key,
            issuer=config.public_host,
            access_ttl=config.access_token_ttl,
            refresh_window=config.refresh_window,
            clock=clock,
        )
        broker = await open_broker(config.database)
        cloudsync = CloudSync.build(
            config,
            store=storage.documents,
            tokens=tokens,
            broker=broker,
            clock=clock,
            metrics=metrics,
        )
        # Every committed change of a document (write, delete, closed stream, deleted
        # trustchain) reaches the subscribers and version caches of every process.
        storage.announce_changes(BrokerFeed(broker))
        keyring = KeyRing.build(
            config,
            store=storage.keyring,
            tokens=tokens,
            relying_party=keys.relying_party,
            clock=clock,
            metrics=metrics,
            shared_rooms=shared_rooms(config, broker, storage, clock),
        )
        notification_timer = asyncio.create_task(cloudsync.hub.run(), name="cloudsync-timer")
        app.state.storage = storage
        app.state.tokens = tokens
        app.state.keyring = keyring
        app.state.broker = broker
        app.state.cloudsync = cloudsync
        log.info(
            "ledgersync started",
            extra={
                "public_host": config.public_host,
                "database": config.database.split(":", 1)[0],
                "challenge_key": keys.relying_party.public_key.hex(),
            },
        )
        try:
            yield
        finally:
            notification_timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await notification_timer
            await cloudsync.hub.close_all()
            await keyring.relay.close_all()
            await broker.close()
            await storage.close()

    def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if exc.rule is not None:
            metrics.blocks_rejected.labels(exc.rule).inc()
        body = error_body(exc.status, exc.cause, clock(), exc.rule)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        cause = NO_SUCH_ENDPOINT if exc.status_code == 404 else str(exc.detail)
        body = error_body(exc.status_code, cause, clock())
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    def client_gone(request: Request, exc: Exception) -> Response:
        log.info("the client left before its request body was received")
        return Response(status_code=CLIENT_CLOSED_REQUEST)  # for the logs and metrics only

    def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse(error_body(500, "internal error", clock()), status_code=500)

    app = Starlette(
        routes=routes(config),
        middleware=[
            Middleware(RequestObserver, metrics=metrics, log_client_ip=config.log_client_ip)
        ],
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            ClientDisconnect: client_gone,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.clock = clock
    app.state.metrics = metrics
    return app


def shared_rooms(
    config: ServerConfig, broker: Broker, storage: Storage, clock: Clock
) -> SharedRooms | None:
    """QR rooms span processes when they share a PostgreSQL database (else: in memory)."""
    if not isinstance(broker, PostgresBroker):
        return None
    return SharedRooms(
        broker=broker,
        seats=RelaySeatStore(storage.database, max_seats=QrRelay.MAX_PEERS),
        clock=clock,
        idle_timeout=config.qr_idle_timeout,
    )
