"""The HTTP layer: error texts, GET retries, typed failures; and the device error boundary.

Retries and error shapes are generic HTTP behaviour, tested with ``httpx2.MockTransport``
answers; the real server's answers are covered end to end.
"""

from __future__ import annotations

import httpx2
import pytest

from ledgersync.device import errors as device_errors
from ledgersync.sdk.device import DeviceCallbacks, with_device
from ledgersync.sdk.errors import (
    DeviceFailure,
    InvalidResponse,
    LedgerAPI4xx,
    LedgerAPI5xx,
    NetworkError,
    TrustchainNotAllowed,
    UserRefusedOnDevice,
)
from ledgersync.sdk.http import HTTPOptions, JSONClient, error_message
from ledgersync.testing import free_port

from ..support.servers import RunningServer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": "Unauthorized: x", "error": "y"}, "Unauthorized: x"),
        ({"error_message": "a"}, "a"),
        ({"error": "b"}, "b"),
        ({"msg": "c"}, "c"),
        ("No such endpoint", "No such endpoint"),
    ],
)
def test_error_message_fields(body: object, message: str) -> None:
    assert error_message(httpx2.Response(400, json=body)) == message


def test_error_message_fallbacks() -> None:
    assert error_message(httpx2.Response(400, text="plain")) == "plain"
    assert error_message(httpx2.Response(418)) == "HTTP 418"


def scripted(*answers: httpx2.Response | Exception) -> tuple[HTTPOptions, list[str]]:
    calls: list[str] = []
    remaining = list(answers)

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.method)
        answer = remaining.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return HTTPOptions(transport=httpx2.MockTransport(handler)), calls


async def test_gets_are_retried_on_5xx_and_network_errors() -> None:
    options, calls = scripted(
        httpx2.Response(503),
        httpx2.ConnectError("refused"),
        httpx2.Response(200, json={"ok": True}),
    )
    client = JSONClient("http://api.test", options)
    assert await client.request("GET", "/x") == {"ok": True}
    assert calls == ["GET"] * 3
    await client.aclose()


async def test_writes_are_not_retried_and_errors_are_typed() -> None:
    options, calls = scripted(httpx2.Response(500, json={"message": "boom"}))
    client = JSONClient("http://api.test", options)
    with pytest.raises(LedgerAPI5xx, match="boom"):
        await client.request("POST", "/x", body={}, has_body=True)
    assert calls == ["POST"]
    await client.aclose()

    options, calls = scripted(httpx2.Response(401, json={"message": "Unauthorized: no"}))
    client = JSONClient("http://api.test", options)
    with pytest.raises(LedgerAPI4xx) as info:
        await client.request("GET", "/x")
    assert (str(info.value), info.value.status, calls) == ("Unauthorized: no", 401, ["GET"])
    await client.aclose()

    options, _ = scripted(httpx2.Response(200, text="not json"))
    client = JSONClient("http://api.test", options)
    with pytest.raises(InvalidResponse):
        await client.request("GET", "/x")
    await client.aclose()


async def test_client_version_header_and_empty_answers() -> None:
    seen: list[str | None] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("x-ledger-client-version"))
        return httpx2.Response(204)

    client = JSONClient(
        "http://api.test", HTTPOptions(httpx2.MockTransport(handler), client_version="py/1")
    )
    assert await client.request("DELETE", "/x") is None
    assert seen == ["py/1"]
    await client.aclose()


async def test_unreachable_server_is_a_network_error() -> None:
    port = free_port()
    client = JSONClient(f"http://127.0.0.1:{port}", HTTPOptions(get_retries=0, timeout=5))
    with pytest.raises(NetworkError):
        await client.request("GET", "/v1/challenge")
    await client.aclose()


async def test_real_server_unknown_route(server: RunningServer) -> None:
    client = JSONClient(server.url)
    with pytest.raises(LedgerAPI4xx, match="No such endpoint") as info:
        await client.request("GET", "/v1/nothing-here")
    assert info.value.status == 404
    await client.aclose()


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (device_errors.UserRefusedError("no"), UserRefusedOnDevice),
        (device_errors.WrongSeedError("seed"), TrustchainNotAllowed),
        (device_errors.DeviceLockedError("locked"), DeviceFailure),
        (device_errors.TransportError("unplugged"), DeviceFailure),
    ],
)
async def test_device_errors_are_translated(raised: Exception, expected: type) -> None:
    events: list[str] = []
    callbacks = DeviceCallbacks(
        on_start_user_interaction=lambda: events.append("start"),
        on_end_user_interaction=lambda: events.append("end"),
    )

    async def job() -> None:
        raise raised

    with pytest.raises(expected, match=str(raised)):
        await with_device(job, callbacks)
    assert events == ["start", "end"]
