"""``GET /openapi.json`` tells the truth: it lists exactly the route table's operations, it is
a loadable OpenAPI 3.1 document whose schemas are valid JSON Schema, and the answers of a
real session (successes and refusals) match what it documents. The security sweeps cover
every route of the same table."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx2
import jsonschema_rs
import pytest
import schemathesis

from ledgersync.protocol import KeyPair
from ledgersync.server import ServerConfig
from ledgersync.server.openapi import OPERATIONS, WEBSOCKET, document, route_operations
from ledgersync.server.routes import routes

from ..support.keyring import (
    Session,
    Trustchain,
    app_path,
    bearer,
    created_trustchain,
    device_answer,
    get_challenge,
    login_member,
    stream_hex,
)
from ..support.servers import RunningServer

#: The document needs no database: the tests that start a server use SQLite.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def table_operations(config: ServerConfig | None = None) -> list[tuple[str, str]]:
    return route_operations(routes(config or ServerConfig()))


def documented_operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for path, item in doc["paths"].items():
        for verb, operation in item.items():
            method = WEBSOCKET if operation.get("x-websocket") else verb.upper()
            found.append((path, method))
    return found


@sqlite_only
def test_the_served_document_lists_exactly_the_route_table(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server()
    response = server.client().get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    assert sorted(documented_operations(doc)) == sorted(table_operations(server.config))
    assert doc == json.loads(json.dumps(document(routes(server.config), server.config)))
    assert doc["servers"] == [{"url": server.config.public_url}]


def test_every_documented_operation_is_a_route() -> None:
    assert sorted(OPERATIONS) == sorted(table_operations())
    ids = [operation["operationId"] for operation in OPERATIONS.values()]
    assert len(ids) == len(set(ids))


@sqlite_only
def test_metrics_switched_off_are_left_out(make_server: Callable[..., RunningServer]) -> None:
    doc = make_server(metrics=False).client().get("/openapi.json").json()
    assert "/metrics" not in doc["paths"]
    assert ("/metrics", "GET") not in documented_operations(doc)


def test_a_route_without_documentation_is_an_error() -> None:
    from starlette.routing import Route

    async def endpoint(request: Any) -> Any:  # pragma: no cover - never called
        raise AssertionError

    with pytest.raises(LookupError, match="/v1/new"):
        document([Route("/v1/new", endpoint, methods=["POST"])], ServerConfig())


def test_every_route_is_swept() -> None:
    from .test_bad_frames import FRAME_SWEEPS
    from .test_bad_input import PROFILES

    assert sorted(PROFILES) == sorted(table_operations())
    websockets = sorted(key for key in table_operations() if key[1] == WEBSOCKET)
    assert sorted(FRAME_SWEEPS) == websockets


def all_schemas(value: Any) -> list[dict[str, Any]]:
    """Every schema object of the document (request, response, parameter, component)."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if isinstance(value.get("schema"), dict):
            found.append(value["schema"])
        for child in value.values():
            found += all_schemas(child)
    elif isinstance(value, list):
        for child in value:
            found += all_schemas(child)
    return found


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document(routes(ServerConfig()), ServerConfig())
    schema = schemathesis.openapi.from_dict(doc)
    labels = [result.ok().label for result in schema.get_all_operations()]  # raises if invalid
    assert len(labels) == len(OPERATIONS)
    for name, component in doc["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(component), name
    for each in all_schemas(doc):
        jsonschema_rs.meta.validate(each)
    for operation in OPERATIONS.values():
        for status, response in operation["responses"].items():
            assert status.isdigit(), status
            if "$ref" in response:
                name = response["$ref"].rsplit("/", 1)[1]
                assert name in doc["components"]["responses"], name


# --- the answers of a real session follow the document ------------------------------------------


class Recorder:
    """Checks each answer against the document: documented status, media type and schema."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.checked: set[tuple[str, str, int]] = set()

    def response_spec(self, path: str, method: str, status: int) -> dict[str, Any]:
        operation = self.doc["paths"][path][method.lower()]
        responses = operation["responses"]
        assert str(status) in responses, f"{method} {path}: {status} is not documented"
        spec: dict[str, Any] = responses[str(status)]
        if "$ref" in spec:
            spec = self.doc["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
        return spec

    def check(self, path: str, response: httpx2.Response) -> httpx2.Response:
        method = response.request.method
        spec = self.response_spec(path, method, response.status_code)
        self.checked.add((path, method, response.status_code))
        content = spec.get("content")
        if not content:
            assert not response.content, f"{method} {path}: a body where none is documented"
            return response
        media = response.headers["content-type"].split(";")[0]
        assert media in content, f"{method} {path}: {media} not in {list(content)}"
        if media == "application/json":
            schema = {**content[media]["schema"], "components": self.doc["components"]}
            errors = [
                error.message
                for error in jsonschema_rs.validator_for(schema).iter_errors(response.json())
            ]
            assert not errors, f"{method} {path} {response.status_code}: {errors}"
        return response


@sqlite_only
def test_a_real_session_answers_as_documented(make_server: Callable[..., RunningServer]) -> None:
    server = make_server()
    client = server.client()
    doc = client.get("/openapi.json").json()
    record = Recorder(doc).check

    record("/_info", client.get("/_info"))
    record("/metrics", client.get("/metrics"))
    record("/openapi.json", client.get("/openapi.json"))
    # a device logs in, creates a trustchain, derives a stream, adds a member
    device_key = KeyPair.generate()
    answer = device_answer(get_challenge(client), device_key)
    login = record("/v1/authenticate", client.post("/v1/authenticate", json=answer))
    device = Session(client, login.json()["access_token"])
    record("/v1/authenticate", client.post("/v1/authenticate", json=answer))  # 401: used
    record("/v1/authenticate", client.post("/v1/authenticate", json={"challenge": 1}))  # 400
    record("/v1/challenge", client.get("/v1/challenge"))
    limited = make_server(rate_limit_per_minute=1, rate_limit_burst=1).client()
    record("/v1/challenge", limited.get("/v1/challenge"))
    record("/v1/challenge", limited.get("/v1/challenge"))  # 429: the bucket is empty
    record("/v1/authenticate", limited.post("/v1/authenticate", json=answer))  # 401
    record("/v1/authenticate", limited.post("/v1/authenticate", json=answer))  # 429
    trustchain = Trustchain.new(device_key)
    record("/v1/seed", device.post_seed(trustchain))
    record("/v1/seed", device.post_json("/v1/seed", "zz"))  # 400
    member_key = KeyPair.generate()
    trustchain.derive(0, member_key)
    tpath = "/v1/trustchain/{trustchain_id}"
    record(tpath + "/derivation", device.post_derivation(trustchain, app_path(0)))
    record(tpath + "/derivation", device.post_derivation(trustchain, app_path(0)))  # 400
    block = trustchain.add_member(app_path(0), device_key, KeyPair.generate())
    record(tpath + "/commands", device.put_blocks(trustchain.id, app_path(0), [block]))
    record(tpath + "/commands", device.put_blocks(trustchain.id, app_path(0), [block]))  # 400
    unknown = "00" + "ab" * 32
    record(tpath + "/commands", device.put_blocks(unknown, app_path(0), [block]))  # 404
    record(tpath, device.tree(trustchain.id))
    record(tpath, device.tree(unknown))  # 404
    record("/v1/refresh", device.get("/v1/refresh"))
    record("/v1/refresh", client.get("/v1/refresh"))  # 401
    record("/v1/trustchains", device.get("/v1/trustchains"))
    record("/v1/trustchains", client.get("/v1/trustchains", headers=bearer("x")))  # 401
    # the member: Cloud Sync
    other = created_trustchain(client)[0]
    member = login_member(client, member_key, trustchain.id)
    query = {"id": trustchain.id, "path": app_path(0)}
    atomic = "/atomic/v1/{slug}"
    url = "/atomic/v1/live"
    auth = bearer(member.token)
    record(atomic, client.get(url, params=query, headers=auth))  # no-data
    record(
        atomic,
        client.post(
            url,
            params={**query, "version": 1},
            json={"payload": "QUJD"},
            headers={**auth, "X-Ledger-Client-Version": "test/1"},
        ),
    )
    record(
        atomic,
        client.post(url, params={**query, "version": 1}, json={"payload": "QUJD"}, headers=auth),
    )  # out-of-sync
    record(atomic, client.get(url, params={**query, "version": 1}, headers=auth))  # up-to-date
    record(atomic, client.get(url, params={**query, "version": 0}, headers=auth))  # out-of-sync
    record(atomic, client.get(url, params=query))  # 401
    record(atomic, client.get(url, params={"id": trustchain.id}, headers=auth))  # 400
    record(
        atomic, client.post(url, params={**query, "version": 2}, json={"payload": 1}, headers=auth)
    )  # 400
    record(atomic, client.delete(url, params=query, headers=auth))
    record(atomic, client.delete(url, params=query))  # 401
    record(
        atomic,
        client.post(url, params={**query, "version": 1}, content=b"x" * (9 << 20), headers=auth),
    )  # 413
    # deleting: 204, then 404 (also for writes to its documents)
    record(tpath, device.delete(f"/v1/trustchain/{trustchain.id}"))
    record(
        atomic,
        client.post(url, params={**query, "version": 1}, json={"payload": "QUJD"}, headers=auth),
    )  # 404
    record(tpath, device.delete(f"/v1/trustchain/{trustchain.id}"))  # 404
    record(tpath, device.delete(f"/v1/trustchain/{other.id}"))  # 401
    record("/v1/seed", client.post("/v1/seed", json=stream_hex(trustchain.streams["m/"])))  # 401
