"""The request log of ``ledgersync serve`` (``server/logs.py``): written without the logging
framework while its configuration is the default one, yet the same JSON lines, one per
request with its status, none lost when the server is stopped (SIGTERM)."""

from __future__ import annotations

import json
import logging

from ledgersync.server.logs import REQUESTS_LOGGER, JsonFormatter
from ledgersync.testing import LocalServer

from ..support.cloudsync import new_member
from ..support.payloads import b64


def request_lines(server: LocalServer) -> list[dict[str, object]]:
    entries = [json.loads(line) for line in server.log.read_text().splitlines() if line]
    return [entry for entry in entries if entry.get("logger") == REQUESTS_LOGGER]


def test_every_request_is_logged_with_its_status_up_to_the_last_one() -> None:
    with LocalServer(log_level="info") as server:
        member = new_member(server.client())
        assert member.post(1, b64("one")).json() == {"status": "updated"}
        polls = 50
        for _ in range(polls):
            assert member.get(version=1).json() == {"status": "up-to-date"}
        client = server.client()
        assert client.get("/nowhere").status_code == 404
        assert client.get("/_info").status_code == 200  # the last one before SIGTERM
        server.stop()
        lines = request_lines(server)
    routes = [(line["method"], line["route"], line["status"]) for line in lines]
    assert routes.count(("GET", "/atomic/v1/{slug}", 200)) == polls
    assert ("GET", "unmatched", 404) in routes
    assert routes[-1] == ("GET", "/_info", 200)
    # the same line the formatter writes for the record the middleware would log
    record = logging.makeLogRecord(
        {
            "name": REQUESTS_LOGGER,
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "request",
            "method": "GET",
            "route": "/_info",
            "status": 200,
            "duration_ms": lines[-1]["duration_ms"],
        }
    )
    expected = json.loads(JsonFormatter().format(record))
    assert list(lines[-1]) == list(expected)
    assert {**lines[-1], "time": None} == {**expected, "time": None}
    assert isinstance(lines[-1]["time"], str) and lines[-1]["time"].endswith("+00:00")
