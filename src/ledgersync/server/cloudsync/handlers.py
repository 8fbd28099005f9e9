"""HTTP and websocket handlers of the Cloud Sync API: decode the request, call one function
of :mod:`.documents` or :mod:`.notifications`, encode the answer. No logic lives here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ..errors import TooLarge
from ..http import bearer_token, json_response, no_content, query_items, read_json
from ..tokens import TokenClaims, claims_or_401
from . import documents
from .context import CloudSync
from .documents import DocumentQuery


def cloudsync(connection: HTTPConnection) -> CloudSync:
    cloud: CloudSync = connection.app.state.cloudsync
    return cloud


def slug(connection: HTTPConnection) -> str:
    value: str = connection.path_params["slug"]
    return value


def authenticated(request: Request) -> tuple[CloudSync, TokenClaims, DocumentQuery]:
    """The API, the claims of the request's valid token (else 401) and its parsed query."""
    cloud = cloudsync(request)
    claims = claims_or_401(cloud.tokens, bearer_token(request))
    query = documents.parse_query(slug(request), query_items(request.scope["query_string"]))
    return cloud, claims, query


async def get_document(request: Request) -> Response:
    cloud, claims, query = authenticated(request)
    return json_response(await documents.read(cloud, claims, query))


async def post_document(request: Request) -> Response:
    cloud, claims, query = authenticated(request)
    limit = cloud.config.cloudsync_max_payload_bytes
    try:
        body = await read_json(request, limit + documents.BODY_OVERHEAD)
    except TooLarge as exc:
        raise documents.payload_too_large(limit) from exc
    payload = documents.parse_payload(body, limit)
    info = documents.parse_info(request.headers.get("x-ledger-client-version"))
    return json_response(await documents.write(cloud, claims, query, payload, info))


async def delete_document(request: Request) -> Response:
    cloud, claims, query = authenticated(request)
    await documents.delete(cloud, claims, query)
    return no_content()


class _Documents:
    """``/atomic/v1/{slug}`` as a plain ASGI app that picks the handler by method. Starlette
    runs each function endpoint inside a second request object and exception wrapper (the
    middleware around the router has one already), and tries a path's routes one method at a
    time: this is the poll and the write, most of the server's traffic (2-5% of their
    throughput, docs/benchmarks.md). The route's ``methods`` still answer any other with 405."""

    HANDLERS: ClassVar[dict[str, Callable[[Request], Awaitable[Response]]]] = {
        "GET": get_document,
        "POST": post_document,
        "DELETE": delete_document,
    }
    #: The route's methods (Starlette adds HEAD wherever GET is; it is answered as GET).
    METHODS: ClassVar[tuple[str, ...]] = tuple(HANDLERS)

    def __init__(self) -> None:
        self.__name__ = "document"  # the route's name
        self._handlers = {**self.HANDLERS, "HEAD": self.HANDLERS["GET"]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        response = await self._handlers[scope["method"]](request)
        await response(scope, receive, send)


document = _Documents()


class _Notifications:
    """The notifications websocket, as a plain ASGI app rather than a function: Starlette
    runs a function endpoint inside two more coroutines and its exception wrapper (the one
    the middleware around the router applies already), which every idle subscriber would
    keep for its whole life."""

    def __init__(self) -> None:
        self.__name__ = "notifications"  # the route's name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive=receive, send=send)
        name = slug(websocket)
        if not documents.SLUG.fullmatch(name):
            await websocket.close(code=1008)  # refused at the handshake (HTTP 403)
            return
        await cloudsync(websocket).hub.serve(websocket, name)


notifications = _Notifications()
