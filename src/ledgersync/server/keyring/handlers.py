"""HTTP and websocket handlers of the key-ring API: decode the request, call one function of
:mod:`.auth` or :mod:`.trustchains`, encode the answer. No logic lives here."""

from __future__ import annotations

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from ..http import bearer_token, json_response, no_content, read_json
from ..tokens import TokenClaims
from . import auth, trustchains
from .context import KeyRing
from .qr import relay_endpoint


def keyring(connection: HTTPConnection) -> KeyRing:
    ring: KeyRing = connection.app.state.keyring
    return ring


def authenticated(request: Request) -> tuple[KeyRing, TokenClaims]:
    """The key ring and the claims of the request's valid bearer token (else 401)."""
    ring = keyring(request)
    return ring, auth.verify(ring, bearer_token(request))


def trustchain_id(request: Request) -> str:
    value: str = request.path_params["trustchain_id"]
    return value


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def get_challenge(request: Request) -> Response:
    ring = keyring(request)
    ring.challenge_limiter.check(client_key(request))
    return json_response(await auth.issue_challenge(ring))


async def post_authenticate(request: Request) -> Response:
    ring = keyring(request)
    ring.authenticate_limiter.check(client_key(request))
    body = await read_json(request, ring.config.max_body_bytes)
    return json_response(await auth.authenticate(ring, body))


async def get_refresh(request: Request) -> Response:
    ring = keyring(request)
    return json_response(await auth.refresh(ring, bearer_token(request)))


async def get_trustchains(request: Request) -> Response:
    ring, claims = authenticated(request)
    return json_response(await trustchains.list_trustchains(ring, claims))


async def get_trustchain(request: Request) -> Response:
    ring, claims = authenticated(request)
    return json_response(await trustchains.get_tree(ring, claims, trustchain_id(request)))


async def post_seed(request: Request) -> Response:
    ring, claims = authenticated(request)
    body = await read_json(request, ring.config.max_body_bytes)
    await trustchains.create_trustchain(ring, claims, body)
    return no_content()


async def post_derivation(request: Request) -> Response:
    ring, claims = authenticated(request)
    body = await read_json(request, ring.config.max_body_bytes)
    await trustchains.add_derivation(ring, claims, trustchain_id(request), body)
    return no_content()


async def put_commands(request: Request) -> Response:
    ring, claims = authenticated(request)
    body = await read_json(request, ring.config.max_body_bytes)
    await trustchains.append_commands(ring, claims, trustchain_id(request), body)
    return no_content()


async def delete_trustchain(request: Request) -> Response:
    ring, claims = authenticated(request)
    await trustchains.delete_trustchain(ring, claims, trustchain_id(request))
    return no_content()


async def qr_relay(websocket: WebSocket) -> None:
    await relay_endpoint(websocket, keyring(websocket).relay)
