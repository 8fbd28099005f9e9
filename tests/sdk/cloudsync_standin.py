"""A TEST-ONLY stand-in for the Cloud Sync backend (issue 5), until the real one lands.

This is not a mock of our server: the Cloud Sync backend does not exist yet, and this small
ASGI app follows ``ledger-sync-api.md`` §4 to the letter so that ``CloudSyncSDK`` can be
exercised over real HTTP and websockets. Replace it with the real server in these tests as
soon as ``/atomic/v1/...`` is served by ``ledgersync serve``.

* Tokens are the real Key Ring server's: the stand-in loads the same key file and verifies
  with the server's own :class:`TokenService` (audience ``CloudSync``), on the same manual
  clock; authorization uses the token's permission snapshot (``JWT contains no permission``,
  ``path does not match``), error bodies are the server's.
* ``GET``: ``no-data`` / ``up-to-date`` (same version) / ``out-of-sync`` with the document.
  ``POST``: accepted when ``version == current + 1``, or any ``version >= 1`` on an empty
  document; otherwise ``out-of-sync``. ``DELETE``: 204.
* Notifications: the client's first frame is its token; the stand-in sends ``ping`` and waits
  for ``pong``, then the current version (if any), then every new version. A subscriber whose
  token has expired gets ``JWT expired`` instead and the version once it sent a fresh token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ledgersync.server.errors import JWT_NO_PERMISSION, PATH_DOES_NOT_MATCH, error_body
from ledgersync.server.keys import load_or_create_keys
from ledgersync.server.run import uvicorn_config
from ledgersync.server.tokens import CLOUD_SYNC_AUDIENCE, TokenClaims, TokenError, TokenService

from ..server.harness import RunningServer

Key = tuple[str, str, str]  # slug, trustchain id, path


@dataclass
class Document:
    version: int
    payload: str
    date: str
    info: str | None

    def out_of_sync(self) -> dict[str, Any]:
        return {
            "status": "out-of-sync",
            "version": self.version,
            "payload": self.payload,
            "date": self.date,
            "info": self.info,
        }


@dataclass(eq=False)
class Subscriber:
    websocket: WebSocket
    claims: TokenClaims
    pending: list[int] = field(default_factory=list)


class Refused(Exception):
    def __init__(self, status: int, cause: str) -> None:
        super().__init__(cause)
        self.status = status


class CloudSyncStandIn:
    def __init__(self, tokens: TokenService, clock: Callable[[], float]) -> None:
        self.tokens = tokens
        self.clock = clock
        self.documents: dict[Key, Document] = {}
        self.subscribers: dict[Key, list[Subscriber]] = {}
        #: Observations for the tests.
        self.tokens_received = 0
        self.pongs = 0
        self.uploads: list[tuple[int, str | None]] = []

    # --- HTTP ---------------------------------------------------------------------------------

    def _claims(self, token: str) -> TokenClaims:
        try:
            return self.tokens.verify(token, audience=CLOUD_SYNC_AUDIENCE)
        except TokenError as exc:
            raise Refused(401, str(exc)) from exc

    def _authorize(self, request: Request) -> Key:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise Refused(401, "missing bearer token")
        claims = self._claims(header[len("Bearer ") :])
        root_id, path = request.query_params.get("id"), request.query_params.get("path")
        if not root_id or not path:
            raise Refused(400, "id and path are required")
        granted = claims.permissions.get(root_id)
        if not granted:
            raise Refused(401, f"{JWT_NO_PERMISSION} for trustchain {root_id}")
        if path not in granted:
            raise Refused(401, PATH_DOES_NOT_MATCH)
        return request.path_params["slug"], root_id, path

    @staticmethod
    def _version(request: Request, required: bool) -> int | None:
        raw = request.query_params.get("version")
        if raw is None:
            if required:
                raise Refused(400, "version is required")
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise Refused(400, "version must be an integer") from exc

    async def atomic(self, request: Request) -> Response:
        try:
            key = self._authorize(request)
            document = self.documents.get(key)
            if request.method == "GET":
                version = self._version(request, required=False)
                if document is None:
                    return JSONResponse({"status": "no-data"})
                if version == document.version:
                    return JSONResponse({"status": "up-to-date"})
                return JSONResponse(document.out_of_sync())
            if request.method == "DELETE":
                self.documents.pop(key, None)
                return Response(status_code=204)
            version = self._version(request, required=True)
            assert version is not None
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("payload"), str):
                raise Refused(400, "payload must be a string")
            accepted = version == document.version + 1 if document else version >= 1
            if not accepted:
                assert document is not None
                return JSONResponse(document.out_of_sync())
            info = request.headers.get("x-ledger-client-version")
            date = datetime.fromtimestamp(self.clock(), UTC).isoformat()
            self.documents[key] = Document(version, body["payload"], date, info)
            self.uploads.append((version, info))
            await self._announce(key, version)
            return JSONResponse({"status": "updated"})
        except Refused as exc:
            now = self.clock()
            return JSONResponse(error_body(exc.status, str(exc), now), status_code=exc.status)

    # --- notifications ------------------------------------------------------------------------

    def _expired(self, claims: TokenClaims) -> bool:
        return self.clock() >= claims.expires_at

    async def _announce(self, key: Key, version: int) -> None:
        for subscriber in list(self.subscribers.get(key, [])):
            if self._expired(subscriber.claims):
                subscriber.pending.append(version)
                await subscriber.websocket.send_text("JWT expired")
            else:
                await subscriber.websocket.send_text(str(version))

    async def notifications(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            claims = self._claims(await websocket.receive_text())
        except Refused as exc:
            await websocket.close(code=1008, reason=str(exc))
            return
        self.tokens_received += 1
        await websocket.send_text("ping")
        if await websocket.receive_text() != "pong":
            await websocket.close(code=1008, reason="expected pong")
            return
        self.pongs += 1
        [(root_id, paths)] = claims.permissions.items()
        key = (websocket.path_params["slug"], root_id, next(iter(paths)))
        subscriber = Subscriber(websocket, claims)
        self.subscribers.setdefault(key, []).append(subscriber)
        try:
            if key in self.documents:
                await websocket.send_text(str(self.documents[key].version))
            while True:
                frame = await websocket.receive_text()
                if frame == "pong":
                    self.pongs += 1
                    continue
                try:
                    subscriber.claims = self._claims(frame)
                except Refused:
                    await websocket.send_text("JWT expired")
                    continue
                self.tokens_received += 1
                for version in subscriber.pending:
                    await websocket.send_text(str(version))
                subscriber.pending.clear()
        except WebSocketDisconnect:
            pass
        finally:
            self.subscribers[key].remove(subscriber)

    async def drop_subscribers(self) -> None:
        """Break every notification connection (as a crashing backend would)."""
        for subscribers in self.subscribers.values():
            for subscriber in list(subscribers):
                await subscriber.websocket.close(code=1011, reason="going away abruptly")

    async def info(self, request: Request) -> Response:
        return JSONResponse({"name": "cloud-sync-standin", "version": "test"})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/_info", self.info, methods=["GET"]),
                Route("/atomic/v1/{slug}", self.atomic, methods=["GET", "POST", "DELETE"]),
                WebSocketRoute("/atomic/v1/{slug}/notifications", self.notifications),
            ]
        )


class CloudSyncStandInServer(RunningServer):
    """The stand-in served like the real server (uvicorn thread, ephemeral port), trusting the
    tokens of ``keyring``."""

    def __init__(self, keyring: RunningServer) -> None:
        super().__init__(keyring.config, keyring.clock)
        keys = load_or_create_keys(keyring.config.key_file)
        tokens = TokenService(
            keys.token_key,
            issuer=keyring.config.public_host,
            access_ttl=keyring.config.access_token_ttl,
            refresh_window=keyring.config.refresh_window,
            clock=keyring.clock,
        )
        self.backend = CloudSyncStandIn(tokens, keyring.clock)
        self.app = self.backend.app()
        self._server = uvicorn.Server(uvicorn_config(self.config, self.app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    async def drop_subscribers(self) -> None:
        """Run :meth:`CloudSyncStandIn.drop_subscribers` on the server's own loop."""
        loop = self._server_loop()
        future = asyncio.run_coroutine_threadsafe(self.backend.drop_subscribers(), loop)
        await asyncio.wrap_future(future)

    def _server_loop(self) -> asyncio.AbstractEventLoop:
        for server in self._server.servers:
            loop = server.get_loop()
            if loop is not None:
                return loop
        raise RuntimeError("the stand-in is not serving")
