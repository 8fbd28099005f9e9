"""``GET /openapi.json``: an OpenAPI 3.1 description of both APIs, built from the route table.

Every route of :mod:`.routes` is described by one entry of :data:`OPERATIONS`, keyed by its
path template and method (``"WEBSOCKET"`` for websocket routes). :func:`document` walks the
app's routes and emits the entry of each, so the document lists exactly what the process
answers (``/metrics`` only when it is enabled); a route without an entry is a programming
error that fails the first request for the document (and ``tests/security/test_openapi.py``).

OpenAPI has no websockets: the two websocket routes are described as ``GET`` operations with
``x-websocket: true``, a ``101`` response and their protocol in the description. A plain
HTTP ``GET`` (no ``Upgrade: websocket``) does not reach them and answers the JSON 404.

Schemas describe what a well-behaved client sends and what the server answers. What a
schema cannot say (a signature that verifies, a block that extends the stream) is refused
with the documented 4xx and a JSON error body (:mod:`.errors`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from .config import ServerConfig
from .http import json_response

OPENAPI_VERSION = "3.1.0"
WEBSOCKET = "WEBSOCKET"

_HEX = "^(?:[0-9a-fA-F]{2})+$"
_TRUSTCHAIN_ID = "^00[0-9a-f]{64}$"
_SLUG = "^[A-Za-z0-9._~-]{1,64}$"
_BASE64 = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_MAX_QUERY_VALUE = 256
_MAX_VERSION = 2**53 - 1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/{description}"}


_NO_CONTENT = {"description": "Done (committed)."}
_BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"required": True, **_json(schema, description)}


_TRUSTCHAIN_PARAMETER = {
    "name": "trustchain_id",
    "in": "path",
    "required": True,
    "description": "The trustchain id: `00` and the root Seed block's hash, in lower-case hex.",
    "schema": {"type": "string", "pattern": _TRUSTCHAIN_ID},
}
_SLUG_PARAMETER = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "Names an independent set of documents (`live` for Ledger Live).",
    "schema": {"type": "string", "pattern": _SLUG},
}


def _query(name: str, description: str, *, required: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": _MAX_QUERY_VALUE}
    if required:
        schema["minLength"] = 1
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


_DOCUMENT_ID = _query(
    "id", "Trustchain id; may be omitted when the token grants `path` in one trustchain only."
)
_DOCUMENT_PATH = _query("path", "The application stream's path (`m/0'/16'/0'`).", required=True)


def _version(*, required: bool, description: str, minimum: int = 0) -> dict[str, Any]:
    return {
        "name": "version",
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": _MAX_VERSION},
    }


_HTML_PAGE = {
    "description": "An HTML page (no user data).",
    "content": {"text/html": {"schema": {"type": "string"}}},
}

_KEY_RING = "Key Ring"
_CLOUD_SYNC = "Cloud Sync"
_SERVICE = "Service"

#: (path template, method) → the OpenAPI operation object.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/", "GET"): {
        "tags": [_SERVICE],
        "summary": "This server's home page: version, health, endpoints, client settings",
        "operationId": "getHomePage",
        "responses": {"200": _HTML_PAGE},
    },
    ("/api", "GET"): {
        "tags": [_SERVICE],
        "summary": "The interactive API reference, rendered from this document",
        "operationId": "getApiReference",
        "responses": {"200": _HTML_PAGE},
    },
    ("/static/{asset}", "GET"): {
        "tags": [_SERVICE],
        "summary": "The stylesheet and script of the pages",
        "operationId": "getStaticAsset",
        "parameters": [
            {
                "name": "asset",
                "in": "path",
                "required": True,
                "description": "The file's name.",
                "schema": {"type": "string", "enum": ["ledgersync.css", "api.js"]},
            }
        ],
        "responses": {
            "200": {
                "description": "The file.",
                "content": {
                    "text/css": {"schema": {"type": "string"}},
                    "text/javascript": {"schema": {"type": "string"}},
                },
            },
            "404": _error("NotFound"),
        },
    },
    ("/_info", "GET"): {
        "tags": [_SERVICE],
        "summary": "Name and version (Ledger Live's availability check)",
        "operationId": "getInfo",
        "responses": {"200": _json(_ref("Info"), "The service's name and version.")},
    },
    ("/_health", "GET"): {
        "tags": [_SERVICE],
        "summary": "Health check for load balancers and orchestrators (the database answers)",
        "operationId": "getHealth",
        "responses": {
            "200": _json(_ref("Health"), "The server and its database answer."),
            "503": _json(_ref("Health"), "The database does not answer."),
        },
    },
    ("/openapi.json", "GET"): {
        "tags": [_SERVICE],
        "summary": "This document",
        "operationId": "getOpenApi",
        "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
    },
    ("/metrics", "GET"): {
        "tags": [_SERVICE],
        "summary": "Prometheus metrics (when `LEDGERSYNC_METRICS` is on)",
        "description": (
            "Served on the main port unless `LEDGERSYNC_METRICS_ADDRESS` gives it a listener of"
            " its own; needs `Authorization: Bearer <token>` when `LEDGERSYNC_METRICS_TOKEN` is"
            " set."
        ),
        "operationId": "getMetrics",
        "responses": {
            "200": {
                "description": "The Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "401": _error("Unauthorized"),
        },
    },
    ("/v1/challenge", "GET"): {
        "tags": [_KEY_RING],
        "summary": "A fresh challenge, signed by the server, to answer once",
        "operationId": "getChallenge",
        "responses": {
            "200": _json(_ref("ChallengeResponse"), "The challenge, as JSON and as device TLV."),
            "429": _error("RateLimited"),
        },
    },
    ("/v1/authenticate", "POST"): {
        "tags": [_KEY_RING],
        "summary": "Answer a challenge (device or member login) for an access token",
        "operationId": "authenticate",
        "requestBody": _body(_ref("AuthenticateRequest"), "The challenge and its answer."),
        "responses": {
            "200": _json(_ref("TokenResponse"), "An access token and its permissions."),
            "400": _error("BadRequest"),
            "401": _error("Unauthorized"),
            "413": _error("TooLarge"),
            "429": _error("RateLimited"),
        },
    },
    ("/v1/refresh", "GET"): {
        "tags": [_KEY_RING],
        "summary": "A new access token inside the refresh window, permissions recomputed",
        "operationId": "refresh",
        "security": _BEARER,
        "responses": {
            "200": _json(_ref("TokenResponse"), "A new access token."),
            "401": _error("Unauthorized"),
        },
    },
    ("/v1/trustchains", "GET"): {
        "tags": [_KEY_RING],
        "summary": "The trustchains the token's subject has access to, now",
        "operationId": "listTrustchains",
        "security": _BEARER,
        "responses": {
            "200": _json(_ref("Permissions"), '`{trustchainId: {path: ["owner"]}}`.'),
            "401": _error("Unauthorized"),
        },
    },
    ("/v1/seed", "POST"): {
        "tags": [_KEY_RING],
        "summary": "Create a trustchain from its root stream (device tokens only)",
        "operationId": "postSeed",
        "security": _BEARER,
        "requestBody": _body(_ref("HexBlocks"), "The root stream's blocks, hex, as a JSON string."),
        "responses": {
            "204": _NO_CONTENT,
            "400": _error("BadRequest"),
            "401": _error("Unauthorized"),
            "413": _error("TooLarge"),
        },
    },
    ("/v1/trustchain/{trustchain_id}", "GET"): {
        "tags": [_KEY_RING],
        "summary": "The tree: the root stream and the newest stream of each application",
        "operationId": "getTrustchain",
        "security": _BEARER,
        "parameters": [_TRUSTCHAIN_PARAMETER],
        "responses": {
            "200": _json(_ref("Tree"), '`{"m/": hex, "m/<appId>\'": hex}`.'),
            "401": _error("Unauthorized"),
            "404": _error("NotFound"),
        },
    },
    ("/v1/trustchain/{trustchain_id}", "DELETE"): {
        "tags": [_KEY_RING],
        "summary": "Delete the trustchain, its streams and its Cloud Sync documents",
        "operationId": "deleteTrustchain",
        "security": _BEARER,
        "parameters": [_TRUSTCHAIN_PARAMETER],
        "responses": {
            "204": _NO_CONTENT,
            "401": _error("Unauthorized"),
            "404": _error("NotFound"),
        },
    },
    ("/v1/trustchain/{trustchain_id}/derivation", "POST"): {
        "tags": [_KEY_RING],
        "summary": "Add a derived (application) stream (device tokens only)",
        "operationId": "postDerivation",
        "security": _BEARER,
        "parameters": [_TRUSTCHAIN_PARAMETER],
        "requestBody": _body(_ref("HexBlocks"), "The new stream's blocks, hex, as a JSON string."),
        "responses": {
            "204": _NO_CONTENT,
            "400": _error("BadRequest"),
            "401": _error("Unauthorized"),
            "404": _error("NotFound"),
            "413": _error("TooLarge"),
        },
    },
    ("/v1/trustchain/{trustchain_id}/commands", "PUT"): {
        "tags": [_KEY_RING],
        "summary": "Append blocks to a stream, all or none (compare-and-set on its head)",
        "operationId": "putCommands",
        "security": _BEARER,
        "parameters": [_TRUSTCHAIN_PARAMETER],
        "requestBody": _body(_ref("Commands"), "The stream's path and the blocks to append."),
        "responses": {
            "204": _NO_CONTENT,
            "400": _error("BadRequest"),
            "401": _error("Unauthorized"),
            "404": _error("NotFound"),
            "413": _error("TooLarge"),
        },
    },
    ("/v1/qr", WEBSOCKET): {
        "tags": [_KEY_RING],
        "summary": "Websocket: the QR-pairing relay",
        "operationId": "qrRelay",
        "x-websocket": True,
        "description": (
            "A room per `host` (the pairing host's ephemeral public key), two peers at most. "
            "Every frame goes verbatim to the other peer; frames sent while alone are held for "
            "the next peer (16 frames, 64 KiB). The peers encrypt end to end. A third peer, a "
            "malformed `host` or too many rooms are refused at the handshake (403); frames over "
            "the frame limit close with 1009; idle rooms close with 1000."
        ),
        "parameters": [
            {
                "name": "host",
                "in": "query",
                "required": True,
                "description": "The host's ephemeral public key: 33 bytes, hex.",
                "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{66}$"},
            }
        ],
        "responses": {
            "101": {"description": "Switching to the websocket protocol."},
            "403": {"description": "Refused at the handshake (the close reason says why)."},
            "404": _error("NotFound"),
        },
    },
    ("/atomic/v1/{slug}", "GET"): {
        "tags": [_CLOUD_SYNC],
        "summary": "Read a document (or learn that the client's version is current)",
        "operationId": "getDocument",
        "security": _BEARER,
        "parameters": [
            _SLUG_PARAMETER,
            _DOCUMENT_ID,
            _DOCUMENT_PATH,
            _version(required=False, description="The client's version, if it has one."),
        ],
        "responses": {
            "200": _json(
                {"oneOf": [_ref("NoData"), _ref("UpToDate"), _ref("OutOfSync")]},
                "`no-data`, `up-to-date`, or the stored document (`out-of-sync`).",
            ),
            "400": _error("BadRequest"),
            "401": _error("Unauthorized"),
        },
    },
    ("/atomic/v1/{slug}", "POST"): {
        "tags": [_CLOUD_SYNC],
        "summary": "Write version `version` of a document (compare-and-set)",
        "operationId": "postDocument",
        "security": _BEARER,
        "parameters": [
            _SLUG_PARAMETER,
            _DOCUMENT_ID,
            _DOCUMENT_PATH,
            _version(
                required=True, minimum=1, description="The stored version + 1 (any >= 1 if none)."
            ),
            {
                "name": "X-Ledger-Client-Version",
                "in": "header",
                "required": False,
                "description": "Stored as the document's `info`.",
                "schema": {"type": "string", "maxLength": _MAX_QUERY_VALUE},
            },
        ],
        "requestBody": _body(_ref("PayloadBody"), "The opaque (encrypted) payload."),
        "responses": {
            "200": _json(
                {"oneOf": [_ref("Updated"), _ref("OutOfSync")]},
                "`updated` once committed, else `out-of-sync` with the stored document.",
            ),
            "400": _error("BadRequest"),
            "401": _error("Unauthorized"),
            "404": _error("NotFound"),
            "409": _error("Conflict"),
            "413": _error("TooLarge"),
        },
    },
    ("/atomic/v1/{slug}", "DELETE"): {
        "tags": [_CLOUD_SYNC],
        "summary": "Delete a document",
        "operationId": "deleteDocument",
        "security": _BEARER,
        "parameters": [_SLUG_PARAMETER, _DOCUMENT_ID, _DOCUMENT_PATH],
        "responses": {
            "204": _NO_CONTENT,
            "400": _error("BadRequest"),
            "401": _error("Unauthorized"),
        },
    },
    ("/atomic/v1/{slug}/notifications", WEBSOCKET): {
        "tags": [_CLOUD_SYNC],
        "summary": "Websocket: new versions as they are committed",
        "operationId": "notifications",
        "x-websocket": True,
        "description": (
            "Text frames only. The client's first frame is its access token; the server then "
            "sends the current version of each document the token grants for this slug, and "
            "every new version once committed (`0` after a deletion); `ping` (answer `pong`); "
            "`JWT expired` (send a fresh token). An invalid token, or one granting nothing, "
            "closes with 1008; binary frames with 1003; frames over 16 KiB with 1009."
        ),
        "parameters": [_SLUG_PARAMETER],
        "responses": {
            "101": {"description": "Switching to the websocket protocol."},
            "403": {"description": "Refused at the handshake (a malformed slug)."},
            "404": _error("NotFound"),
        },
    },
}

_HEX_STRING = {"type": "string", "pattern": _HEX}
_CREDENTIAL = {
    "type": "object",
    "required": ["version", "curveId", "signAlgorithm", "publicKey"],
    "properties": {
        "version": {"type": "integer"},
        "curveId": {"type": "integer"},
        "signAlgorithm": {"type": "integer"},
        "publicKey": _HEX_STRING,
    },
}
_OUT_OF_SYNC = {
    "type": "object",
    "required": ["status", "version", "payload", "date"],
    "properties": {
        "status": {"const": "out-of-sync"},
        "version": {"type": "integer", "minimum": 1},
        "payload": {"type": "string"},
        "date": {"type": "string", "format": "date-time"},
        "info": {"type": "string"},
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "description": "Every 4xx and 5xx body. Clients match on substrings of `message`.",
        "required": ["time", "cause", "status", "type", "message"],
        "properties": {
            "time": {"type": "string", "format": "date-time"},
            "cause": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "type": {"type": "string"},
            "message": {"type": "string"},
            "rule": {"type": "string", "description": "The protocol rule a block breaks."},
        },
    },
    "Info": {
        "type": "object",
        "required": ["name", "version"],
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
    },
    "Health": {
        "type": "object",
        "required": ["status", "database"],
        "properties": {
            "status": {"enum": ["ok", "unavailable"]},
            "database": {"enum": ["ok", "unavailable"]},
        },
    },
    "Credential": _CREDENTIAL,
    "Challenge": {
        "type": "object",
        "description": "Posted back verbatim with its answer.",
        "required": ["version", "challenge", "host", "rp", "protocolVersion"],
        "properties": {
            "version": {"type": "integer"},
            "challenge": {
                "type": "object",
                "required": ["data", "expiry"],
                "properties": {
                    "data": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                    "expiry": {"type": "string", "format": "date-time"},
                },
            },
            "host": {"type": "string"},
            "rp": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["credential", "signature"],
                    "properties": {"credential": _ref("Credential"), "signature": _HEX_STRING},
                },
            },
            "protocolVersion": {
                "type": "object",
                "required": ["major", "minor", "patch"],
                "properties": {
                    "major": {"type": "integer"},
                    "minor": {"type": "integer"},
                    "patch": {"type": "integer"},
                },
            },
        },
    },
    "ChallengeResponse": {
        "type": "object",
        "required": ["json", "tlv"],
        "properties": {"json": _ref("Challenge"), "tlv": _HEX_STRING},
    },
    "AuthenticateRequest": {
        "type": "object",
        "required": ["challenge", "signature"],
        "properties": {
            "challenge": _ref("Challenge"),
            "signature": {
                "type": "object",
                "required": ["credential", "signature", "attestation"],
                "properties": {
                    "credential": _ref("Credential"),
                    "signature": _HEX_STRING,
                    "attestation": _HEX_STRING,
                },
            },
        },
    },
    "Permissions": {
        "type": "object",
        "description": '`{trustchainId: {path: ["owner"]}}`.',
        "additionalProperties": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "TokenResponse": {
        "type": "object",
        "required": ["access_token", "permissions"],
        "properties": {
            "access_token": {"type": "string", "description": "An ES256 JWT."},
            "permissions": _ref("Permissions"),
        },
    },
    "HexBlocks": {**_HEX_STRING, "description": "Serialized blocks, hex."},
    "Commands": {
        "type": "object",
        "required": ["path", "blocks"],
        "properties": {
            "path": {"type": "string", "description": "The stream's path (`m/0'/16'/0'`)."},
            "blocks": {"type": "array", "minItems": 1, "items": _HEX_STRING},
        },
    },
    "Tree": {
        "type": "object",
        "required": ["m/"],
        "additionalProperties": _HEX_STRING,
    },
    "PayloadBody": {
        "type": "object",
        "required": ["payload"],
        "properties": {
            "payload": {
                "type": "string",
                "pattern": _BASE64,
                "description": "The encrypted document, standard base64 (padded).",
            }
        },
    },
    "NoData": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "no-data"}},
    },
    "UpToDate": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "up-to-date"}},
    },
    "Updated": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "updated"}},
    },
    "OutOfSync": _OUT_OF_SYNC,
}

_ERROR_RESPONSES = {
    "BadRequest": "Malformed request: bad JSON, wrong types, invalid blocks (`rule`).",
    "Unauthorized": "Missing, invalid or expired token, or no permission (see `message`).",
    "NotFound": "No such trustchain, stream or route.",
    "Conflict": "The document changed during the write; read it and try again.",
    "TooLarge": "The body (or payload) exceeds the configured limit.",
    "RateLimited": "Too many requests from this client; retry after `Retry-After` seconds.",
}


def _error_response(name: str, description: str) -> dict[str, Any]:
    response = _json(_ref("Error"), description)
    if name == "RateLimited":
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}
        }
    return response


def route_operations(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """The (path template, method) pairs a route table answers (``HEAD`` left out)."""
    pairs: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, WebSocketRoute):
            pairs.append((route.path, WEBSOCKET))
        elif isinstance(route, Route):
            methods = sorted(route.methods or ())
            pairs.extend((route.path, method) for method in methods if method != "HEAD")
        else:  # pragma: no cover - the table holds Route and WebSocketRoute only
            raise TypeError(f"cannot describe route {route!r}")
    return pairs


def document(routes: Iterable[BaseRoute], config: ServerConfig) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (each must have an entry in :data:`OPERATIONS`)."""
    paths: dict[str, dict[str, Any]] = {}
    for path, method in route_operations(routes):
        try:
            operation = OPERATIONS[(path, method)]
        except KeyError:
            raise LookupError(f"route {method} {path} has no entry in openapi.OPERATIONS") from None
        verb = "get" if method == WEBSOCKET else method.lower()
        item = paths.setdefault(path, {})
        if verb in item:
            raise LookupError(f"{path}: two routes describe {verb.upper()}")
        item[verb] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "ledgersync: Ledger Sync (Key Ring and Cloud Sync APIs)",
            "version": config.version,
            "description": (
                "A self-hostable, wire-compatible implementation of Ledger Live's Ledger Sync "
                "backends on one origin: the Key Ring API (`/v1/...`) and the Cloud Sync API "
                "(`/atomic/v1/...`). Unknown routes answer a JSON 404, wrong methods a JSON 405."
            ),
        },
        "servers": [{"url": config.public_url}],
        "tags": [{"name": _KEY_RING}, {"name": _CLOUD_SYNC}, {"name": _SERVICE}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": SCHEMAS,
            "responses": {
                name: _error_response(name, description)
                for name, description in _ERROR_RESPONSES.items()
            },
        },
    }


def cached_document(app: Starlette) -> dict[str, Any]:
    """The document of ``app``, built once from its own route table."""
    cached: dict[str, Any] | None = getattr(app.state, "openapi_document", None)
    if cached is None:
        cached = document(app.routes, app.state.config)
        app.state.openapi_document = cached
    return cached


async def openapi(request: Request) -> Response:
    """``GET /openapi.json``."""
    return json_response(cached_document(request.app))
