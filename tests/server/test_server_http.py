"""HTTP behaviour shared by every endpoint: errors as JSON, body limits, rate limits, metrics,
logs."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator

import httpx2
import pytest

import ledgersync
from ledgersync.protocol import KeyPair
from ledgersync.server.logs import JsonFormatter, configure_logging

from ..support.keyring import (
    created_trustchain,
    device_answer,
    get_challenge,
    login_device,
    token_of,
)
from ..support.servers import ManualClock, RunningServer


def test_info(client: httpx2.Client) -> None:
    response = client.get("/_info")
    assert response.status_code == 200
    assert response.json() == {"name": "ledgersync", "version": ledgersync.__version__}


def test_health_checks_the_database(
    server: RunningServer, client: httpx2.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = client.get("/_health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response.headers["cache-control"] == "no-store"

    async def unreachable(sql: str, *args: object) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(server.app.state.storage.database, "read_row", unreachable)
    response = client.get("/_health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable"}


def test_unknown_routes_are_json_404(client: httpx2.Client) -> None:
    response = client.get("/v2/nothing")
    assert response.status_code == 404
    body = response.json()
    assert body["message"] == "Not Found: No such endpoint, please check API docs"
    assert set(body) == {"time", "cause", "status", "type", "message"}
    assert body["status"] == 404 and body["type"] == "NOT_FOUND"


def test_wrong_methods_are_json_405(client: httpx2.Client) -> None:
    response = client.delete("/v1/challenge")
    assert response.status_code == 405
    assert response.json()["type"] == "METHOD_NOT_ALLOWED"


def test_a_document_answers_its_three_methods_and_405_to_others(client: httpx2.Client) -> None:
    path = "/atomic/v1/live?path=m/0'/16'/0'&version=0"
    for method in ("GET", "HEAD", "POST", "DELETE"):  # reach their handler: no token, 401
        response = client.request(method, path)
        assert response.status_code == 401, method
    response = client.put(path)
    assert response.status_code == 405
    assert response.json()["type"] == "METHOD_NOT_ALLOWED"
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "DELETE"}


def test_declared_oversized_bodies_are_413(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(max_body_bytes=1000)
    response = server.client().post("/v1/authenticate", content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json()["type"] == "REQUEST_ENTITY_TOO_LARGE"


def test_streamed_oversized_bodies_are_413(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    response = server.client().post("/v1/authenticate", content=chunks())
    assert response.status_code == 413


def test_bad_json_is_400(client: httpx2.Client) -> None:
    for content in (b"{", b"\xff\xfe", b"[" * 100_000):
        response = client.post("/v1/authenticate", content=content)
        assert response.status_code == 400
        assert response.json()["cause"] == "the request body is not valid JSON"


@pytest.mark.parametrize("backend", ["sqlite"])  # breaks the schema through the SQLite file
def test_unexpected_failures_are_json_500_without_details(
    make_server: Callable[..., RunningServer], database_url: str
) -> None:
    server = make_server()
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        connection.execute("DROP TABLE used_challenges")
    answer = device_answer(get_challenge(server.client()), KeyPair.generate())
    response = server.client().post("/v1/authenticate", json=answer)
    assert response.status_code == 500
    assert response.json()["message"] == "Internal Server Error: internal error"
    assert "Traceback" not in response.text


def test_challenge_and_authenticate_are_rate_limited(
    make_server: Callable[..., RunningServer],
) -> None:
    clock = ManualClock()
    server = make_server(clock=clock, rate_limit_per_minute=60, rate_limit_burst=2)
    client = server.client()
    first, second = get_challenge(client), get_challenge(client)
    limited = client.get("/v1/challenge")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["type"] == "TOO_MANY_REQUESTS"
    clock.advance(1)
    third = get_challenge(client)
    device = KeyPair.generate()
    for challenge in (first, second):
        answer = device_answer(challenge, device)
        assert client.post("/v1/authenticate", json=answer).status_code == 200
    answer = device_answer(third, device)
    assert client.post("/v1/authenticate", json=answer).status_code == 429


def test_rate_limits_follow_trusted_proxies(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(forwarded_allow_ips="127.0.0.1", rate_limit_burst=1)
    client = server.client()

    def challenge_from(address: str) -> int:
        return client.get("/v1/challenge", headers={"X-Forwarded-For": address}).status_code

    assert challenge_from("192.0.2.1") == 200
    assert challenge_from("192.0.2.2") == 200
    assert challenge_from("192.0.2.1") == 429


def test_forwarded_addresses_are_ignored_by_default(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(rate_limit_burst=1)
    client = server.client()
    assert client.get("/v1/challenge", headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 200
    assert client.get("/v1/challenge", headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 429


def test_other_endpoints_are_not_rate_limited(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(rate_limit_per_minute=1, rate_limit_burst=1)
    client = server.client()
    session = login_device(client, KeyPair.generate())
    for _ in range(5):
        assert session.get("/v1/trustchains").status_code == 200
        assert client.get("/_info").status_code == 200


def test_metrics_use_route_templates(client: httpx2.Client) -> None:
    trustchain, device, _ = created_trustchain(client)
    assert device.tree(trustchain.id).status_code == 200
    client.get("/v2/nothing")
    text = client.get("/metrics").text
    assert (
        'ledgersync_http_requests_total{method="GET",route="/v1/trustchain/{trustchain_id}",'
        'status="200"} 1.0'
    ) in text
    assert 'route="unmatched",status="404"' in text
    assert trustchain.id not in text
    assert 'ledgersync_logins_total{kind="device",outcome="accepted"} 1.0' in text
    assert "ledgersync_trustchains_created_total 1.0" in text


def test_metrics_can_be_disabled(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(metrics=False)
    assert server.client().get("/metrics").status_code == 404


def request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "ledgersync.requests"]


def test_logs_leave_out_addresses_and_secrets(
    client: httpx2.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        token = token_of(
            client.post(
                "/v1/authenticate", json=device_answer(get_challenge(client), KeyPair.generate())
            )
        )
        client.get("/v1/trustchains", headers={"Authorization": f"Bearer {token}"})
    records = request_records(caplog)
    assert [record.route for record in records][-3:] == [  # type: ignore[attr-defined]
        "/v1/challenge",
        "/v1/authenticate",
        "/v1/trustchains",
    ]
    # pytest hooks its own handler onto uvicorn's access logger; `serve` leaves that logger
    # without handlers (test_serve_logging_drops_the_access_log), so only ours count here.
    ours = [record for record in caplog.records if record.name.startswith("ledgersync")]
    formatted = [JsonFormatter().format(record) for record in ours]
    assert all("127.0.0.1" not in line for line in formatted)
    assert all(token not in line and token.split(".")[2] not in line for line in formatted)
    entry = json.loads(JsonFormatter().format(records[-1]))
    assert entry["status"] == 200 and entry["method"] == "GET"
    assert "client" not in entry


def test_client_addresses_are_logged_when_enabled(
    make_server: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(log_client_ip=True)
    with caplog.at_level(logging.INFO):
        server.client().get("/_info")
    assert request_records(caplog)[-1].client == "127.0.0.1"  # type: ignore[attr-defined]


def test_key_file_is_private(server: RunningServer) -> None:
    key_file = server.config.key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    content = json.loads(key_file.read_text())
    assert set(content) == {"version", "relying_party_private_key", "token_private_key_pem"}


def test_serve_logging_drops_the_access_log() -> None:
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    saved = (root.handlers[:], root.level, access.handlers[:], access.propagate)
    try:
        configure_logging("info")
        assert not access.hasHandlers()
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:], level, access.handlers[:], access.propagate = saved
        root.setLevel(level)
