"""Regression tests for issue #12 (defects 1-9): hostile, broken or unlucky clients against
the real server, over real sockets.

Raw sockets where a client library would hide what happens on the wire (slow or huge
headers, a body that never ends, connection limits, a handshake that is never answered);
small configured timeouts so that the slow-client tests take about a second each. A test
that waits for the server to act waits for an observable event (a close, an answer, a log
record) with a deadline; the only sleeps are the pauses of the slow clients themselves.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import websockets
from websockets.sync.client import connect as ws_connect

from ledgersync.protocol import KeyPair
from ledgersync.server.storage import MIGRATIONS, apply_migrations
from ledgersync.server.storage import connect as connect_database
from ledgersync.testing import LocalServer, free_port

from ..support import DEADLINE
from ..support.cloudsync import closed, new_member, next_frame, subscribe
from ..support.http import connect, drip, keep_alive_request, read_response, read_until_closed
from ..support.keyring import (
    app_path,
    bearer,
    created_trustchain,
    device_login,
    error_message,
    login_device,
    login_member,
    rotate,
    token_of,
)
from ..support.logs import LogRecords, captured_logs, request_record
from ..support.payloads import b64, b64url_decode, b64url_encode
from ..support.servers import ManualClock, RunningServer, server_config
from ..support.tokens import P256_ORDER

#: The defect is in the HTTP layer, not in the database: one backend is enough.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


# --- the log records of the test --------------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[LogRecords]:
    with captured_logs() as records:
        yield records


# --- 1. JSON integers beyond Python's int-string limit -------------------------------------------


@SQLITE_ONLY
def test_huge_json_integers_are_400_not_500(server: RunningServer, logs: LogRecords) -> None:
    client = server.client()
    trustchain, device, (key,) = created_trustchain(client)
    member = login_member(client, key, trustchain.id)
    huge = b"[" + b"1" * 5000 + b"]"
    calls = [
        ("POST", "/v1/authenticate", None),
        ("POST", "/v1/seed", device.token),
        ("POST", f"/v1/trustchain/{trustchain.id}/derivation", device.token),
        ("PUT", f"/v1/trustchain/{trustchain.id}/commands", device.token),
    ]
    params = {"id": trustchain.id, "path": app_path(0), "version": "1"}
    for method, url, token in calls:
        headers = {"content-type": "application/json", **(bearer(token) if token else {})}
        response = client.request(method, url, content=huge, headers=headers)
        assert response.status_code == 400, (url, response.text)
        assert response.json()["cause"] == "the request body is not valid JSON"
    for body in (huge, b'{"payload": ' + b"9" * 5000 + b"}"):
        response = client.post(
            "/atomic/v1/live",
            params=params,
            content=body,
            headers={"content-type": "application/json", **bearer(member.token)},
        )
        assert response.status_code == 400, response.text
    assert logs.problems() == []


# --- 2. Cloud Sync payloads: base64 only, the same rule on both backends ------------------------


def test_cloudsync_payloads_must_be_base64(client: httpx2.Client) -> None:
    member = new_member(client)
    bad = [
        '"\\ud800"',  # a lone surrogate (UnicodeEncodeError on both backends)
        '"a\\u0000b"',  # NUL (PostgreSQL TEXT cannot hold it)
        '"not base64!"',
        '"x"',
        '"AAE"',  # missing padding
        '"AAEC\\n"',
        '"AA-_"',  # URL-safe alphabet: Ledger's clients send standard base64
        '"é"',
    ]
    for payload in bad:
        response = client.post(
            "/atomic/v1/live",
            params=member.query(version=1),
            content=f'{{"payload": {payload}}}'.encode(),
            headers={"content-type": "application/json", **bearer(member.token)},
        )
        assert response.status_code == 400, (payload, response.text)
        assert "base64" in error_message(response)
    assert member.get().json() == {"status": "no-data"}  # nothing was written
    for version, payload in enumerate(["", "AAEC", "AAE=", "AA==", b64("réponse ✓")], start=1):
        assert member.post(version, payload).json() == {"status": "updated"}, payload
        assert member.get().json()["payload"] == payload


# --- 3. bounded headers, slow clients, idle connections, connection limits, open files ----------


@SQLITE_ONLY
def test_request_headers_are_limited_to_16_kib(server: RunningServer) -> None:
    fits = connect(server.port)
    fits.sendall(keep_alive_request(headers={"X-Filler": "a" * 15_000}))
    assert read_response(fits)[0] == 200

    too_large = connect(server.port)
    too_large.sendall(keep_alive_request(headers={"X-Filler": "a" * 17_000}))
    assert read_response(too_large)[0] == 431
    assert read_until_closed(too_large) == b""

    # A header that never ends (the 64 MiB one): cut off long before it is all sent.
    endless = connect(server.port)
    endless.sendall(b"GET /_info HTTP/1.1\r\nHost: ledgersync.test\r\nX-Endless: ")
    sent, total = 0, 64 << 20
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        while sent < total:
            sent += endless.send(b"a" * 65536)
    assert sent < 16 << 20, "the server read a 64 MiB header"


@SQLITE_ONLY
def test_a_header_dripped_byte_by_byte_is_cut_at_the_header_timeout(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(header_timeout=1.0)
    slow = connect(server.port)
    slow.sendall(b"GET /_info HTTP/1.1\r\nHost: ledgersync.test\r\n")
    elapsed = drip(slow, b"X-Slow: " + b"a" * 1000, every=0.25)
    assert 0.5 < elapsed < 6
    assert read_response(slow)[0] == 408
    assert read_until_closed(slow) == b""


@SQLITE_ONLY
def test_a_body_dripped_byte_by_byte_is_cut_at_the_body_timeout(
    make_server: Callable[..., RunningServer], logs: LogRecords
) -> None:
    server = make_server(body_timeout=1.0)
    slow = connect(server.port)
    headers = {"Content-Type": "application/json", "Content-Length": "1000"}
    slow.sendall(keep_alive_request("POST", "/v1/authenticate", headers) + b"{")
    elapsed = drip(slow, b" " * 999, every=0.25)
    assert 0.5 < elapsed < 6
    assert read_response(slow)[0] == 408
    assert read_until_closed(slow) == b""
    record = logs.wait_for(request_record("/v1/authenticate"))
    assert record.status == 499 and record.levelno == logging.INFO  # type: ignore[attr-defined]
    assert logs.problems() == []


@SQLITE_ONLY
def test_a_request_answered_before_its_body_ended_still_leaves_a_deadline(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(max_body_bytes=1000, keep_alive_timeout=0.5)
    connection = connect(server.port)
    headers = {"Content-Type": "application/json", "Content-Length": "2000"}
    connection.sendall(keep_alive_request("POST", "/v1/authenticate", headers) + b"[" * 1000)
    assert read_response(connection)[0] == 413  # answered at once, from Content-Length
    connection.sendall(b"[" * 1000)  # the rest of the body: the connection is now idle
    assert read_until_closed(connection) == b""


@SQLITE_ONLY
def test_idle_connections_are_closed(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(keep_alive_timeout=0.5)
    silent = connect(server.port)  # never sends a byte
    started = time.monotonic()
    assert read_until_closed(silent) == b""
    assert time.monotonic() - started > 0.3

    kept_alive = connect(server.port)
    kept_alive.sendall(keep_alive_request())
    assert read_response(kept_alive)[0] == 200
    # Blank lines between requests are allowed and start no request: they keep nothing open.
    elapsed = drip(kept_alive, b"\r\n" * 100, every=0.1)
    assert elapsed < 5
    assert read_until_closed(kept_alive) == b""


def qr_peer(port: int, room: str, source: str = "127.0.0.1") -> Any:
    return ws_connect(
        f"ws://127.0.0.1:{port}/v1/qr?host={room}",
        open_timeout=DEADLINE,
        source_address=(source, 0),
    )


def room_key() -> str:
    return KeyPair.generate().public_key.hex()


@SQLITE_ONLY
def test_the_connection_limit_closes_idle_connections_first_then_refuses(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(max_connections=4)
    idle = [connect(server.port) for _ in range(4)]
    for connection in idle:  # once answered, the server holds them as idle keep-alives
        connection.sendall(keep_alive_request())
        assert read_response(connection)[0] == 200
    fifth = connect(server.port)
    fifth.sendall(keep_alive_request())
    assert read_response(fifth)[0] == 200  # served: the longest idle connection made room
    assert read_until_closed(idle[0]) == b""
    for connection in [*idle, fifth]:
        connection.close()

    first_room, second_room = room_key(), room_key()
    with (
        qr_peer(server.port, first_room),
        qr_peer(server.port, first_room),
        qr_peer(server.port, second_room),
        qr_peer(server.port, second_room),
    ):
        refused = read_until_closed(connect(server.port))  # four busy sockets: no room
        assert refused.startswith(b"HTTP/1.1 503 "), refused
    again = connect(server.port)  # the websockets are gone: room again
    again.sendall(keep_alive_request())
    assert read_response(again)[0] == 200


@SQLITE_ONLY
def test_connections_per_client_address_are_limited(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(max_connections_per_client=2)
    room = room_key()
    with qr_peer(server.port, room), qr_peer(server.port, room):
        refused = read_until_closed(connect(server.port))
        assert refused.startswith(b"HTTP/1.1 503 "), refused
        elsewhere = connect(server.port, source="127.0.0.2")  # another client: served
        elsewhere.sendall(keep_alive_request())
        assert read_response(elsewhere)[0] == 200
        with qr_peer(server.port, room_key(), source="127.0.0.2"):
            # 127.0.0.2 is at its limit too, but one of its two connections is idle: that
            # one makes room for the new one
            third = connect(server.port, source="127.0.0.2")
            third.sendall(keep_alive_request())
            assert read_response(third)[0] == 200
            assert read_until_closed(elsewhere) == b""


@SQLITE_ONLY
def test_a_trusted_proxy_is_not_limited_per_address(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(max_connections_per_client=1, forwarded_allow_ips="127.0.0.1")
    room = room_key()
    with qr_peer(server.port, room), qr_peer(server.port, room):
        through_proxy = connect(server.port)
        through_proxy.sendall(keep_alive_request())
        assert read_response(through_proxy)[0] == 200


_SERVE_WITH_FILE_LIMIT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
from ledgersync.server.config import ServerConfig
from ledgersync.server.run import run
run(ServerConfig.from_env())
"""


@contextlib.contextmanager
def serve_with_file_limit(directory: Path, soft: int, hard: int) -> Iterator[tuple[int, int]]:
    """``run()`` (what ``ledgersync serve`` calls) in a child started with this open-files
    limit; yields its pid and port once it answers."""
    port = free_port()
    env = {
        **os.environ,
        "LEDGERSYNC_PORT": str(port),
        "LEDGERSYNC_DATABASE": f"sqlite:///{directory / 'ledgersync.sqlite'}",
        "LEDGERSYNC_KEY_FILE": str(directory / "server-key.json"),
        "LEDGERSYNC_LOG_LEVEL": "warning",
    }
    with (directory / "server.log").open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", _SERVE_WITH_FILE_LIMIT, str(soft), str(hard)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:  # readiness of a child process: polled, with a deadline
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/_info", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert child.poll() is None, (directory / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield child.pid, port
    finally:
        child.terminate()
        child.wait(timeout=30)


def open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-files line")


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs /proc")
def test_serve_raises_the_soft_open_files_limit(tmp_path: Path) -> None:
    with serve_with_file_limit(tmp_path, 512, 4096) as (pid, _):
        assert open_files_limits(pid) == (4096, 4096)


def test_a_thousand_idle_connections_under_1024_files_do_not_stop_the_server(
    tmp_path: Path,
) -> None:
    with serve_with_file_limit(tmp_path, 1024, 1024) as (_, port):
        idle: list[socket.socket] = []
        try:
            for index in range(1100):  # from 11 client addresses, 100 each
                idle.append(connect(port, source=f"127.0.0.{2 + index // 100}"))
            probe = connect(port, source="127.0.0.99")
            idle.append(probe)
            probe.sendall(keep_alive_request())
            assert read_response(probe)[0] == 200
            probe.sendall(keep_alive_request(target="/metrics"))
            answer = read_response(probe)
            assert answer[0] == 200
            values = {
                line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in answer[1].decode().splitlines()
                if line.startswith("ledgersync_connections")
            }
            # 1,024 files leave room for 768 connections: the longest idle ones were closed
            assert values["ledgersync_connections_open"] <= 768
            evicted = values['ledgersync_connections_closed_total{reason="evicted_idle"}']
            assert evicted >= 1101 - 768
        finally:
            for connection in idle:
                connection.close()


# --- 4. a websocket handshake the websocket layer refuses ----------------------------------------


@SQLITE_ONLY
def test_a_websocket_handshake_with_a_long_url_is_answered_and_closed(
    server: RunningServer,
) -> None:
    connection = connect(server.port)
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    connection.sendall(keep_alive_request("GET", "/v1/qr?host=" + "a" * 9000, headers))
    answer = read_until_closed(connection)
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]


# --- 5. no client address, room key or token in the logs -----------------------------------------


def leaks(lines: list[str], *secrets: str) -> list[str]:
    return [line for line in lines if any(secret in line for secret in secrets)]


async def relay_one_frame(ws_url: str, room: str, source: tuple[str, int]) -> None:
    """A QR host and peer in ``room``, both from ``source``: the peer's frame reaches the host."""
    async with (
        websockets.connect(f"{ws_url}/v1/qr?host={room}", local_addr=source) as host,
        websockets.connect(f"{ws_url}/v1/qr?host={room}", local_addr=source) as peer,
    ):
        await peer.send("hello")
        assert await host.recv() == "hello"


@SQLITE_ONLY
async def test_websocket_logs_carry_no_address_room_key_or_token(
    server: RunningServer, logs: LogRecords
) -> None:
    member = new_member(server.client())
    assert member.post(1, b64("x")).json() == {"status": "updated"}
    room = room_key()
    source = ("127.0.0.3", 0)
    await relay_one_frame(server.ws_url, room, source)
    notifications = await websockets.connect(
        f"{server.ws_url}/atomic/v1/live/notifications", local_addr=source
    )
    await notifications.send(member.token)
    assert await next_frame(notifications) == "1"
    await notifications.close()
    logs.wait_for(request_record("/atomic/v1/{slug}/notifications"))
    logs.wait_for(request_record("/v1/qr"))
    signature = member.token.rsplit(".", 1)[1]
    assert leaks(logs.lines(), "127.0.0.3", room, signature) == []


@SQLITE_ONLY
async def test_serve_logs_carry_no_address_room_key_or_token_even_at_debug_level(
    database_url: str, tmp_path: Path
) -> None:
    process = LocalServer(tmp_path, database=database_url, log_level="debug").start()
    try:
        member = new_member(process.client())
        room = room_key()
        source = ("127.0.0.3", 0)
        await relay_one_frame(process.ws_url, room, source)
        socket = await subscribe(process.ws_url, member.token)
        assert await next_frame(socket) == "0"  # subscribed (no document yet)
        assert member.post(1, b64("x")).json() == {"status": "updated"}
        assert await next_frame(socket) == "1"
        await socket.close()
    finally:
        process.close()
    lines = process.log.read_text().splitlines()
    assert any('"route": "/v1/qr"' in line for line in lines)  # the log is there
    signature = member.token.rsplit(".", 1)[1]
    payload = member.token.split(".")[1]
    assert leaks(lines, "127.0.0.3", room, signature, payload) == []


# --- 6. one token, one string: low-S signatures, canonical base64 -------------------------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def signature_s(token: str) -> int:
    return int.from_bytes(b64url_decode(token.rsplit(".", 1)[1])[32:], "big")


def with_signature(token: str, signature: bytes) -> str:
    return f"{token.rsplit('.', 1)[0]}.{b64url_encode(signature)}"


@SQLITE_ONLY
def test_tokens_are_issued_in_the_low_s_form(client: httpx2.Client) -> None:
    device = KeyPair.generate()
    tokens = [token_of(device_login(client, device)) for _ in range(24)]
    assert [signature_s(token) <= P256_ORDER // 2 for token in tokens] == [True] * 24


@SQLITE_ONLY
def test_a_token_is_accepted_in_its_one_canonical_form(client: httpx2.Client) -> None:
    member = new_member(client)
    device = login_device(client, KeyPair.generate())

    def cloud_sync(token: str) -> httpx2.Response:
        return client.get("/atomic/v1/live", params=member.query(), headers=bearer(token))

    def key_ring(token: str) -> httpx2.Response:
        return client.get("/v1/trustchains", headers=bearer(token))

    for token, call in ((member.token, cloud_sync), (device.token, key_ring)):
        assert call(token).status_code == 200  # the genuine one (now cached by Cloud Sync)
        raw = b64url_decode(token.rsplit(".", 1)[1])
        r, s = raw[:32], int.from_bytes(raw[32:], "big")
        high_s = with_signature(token, r + (P256_ORDER - s).to_bytes(32, "big"))
        # the last character of 64 bytes in base64 carries 4 bits a decoder ignores
        spare_bits = token[:-1] + B64URL[B64URL.index(token[-1]) ^ 1]
        assert b64url_decode(spare_bits.rsplit(".", 1)[1]) == raw  # same bytes, other string
        for variant in (high_s, spare_bits):
            response = call(variant)
            assert response.status_code == 401, response.text
            assert "Invalid JWT" in error_message(response)


# --- 7. clients that leave, and broken websocket text --------------------------------------------


@SQLITE_ONLY
def test_a_client_gone_mid_body_is_logged_at_info_and_counted_as_499(
    server: RunningServer, logs: LogRecords
) -> None:
    connection = connect(server.port)
    headers = {"Content-Type": "application/json", "Content-Length": "1000"}
    connection.sendall(keep_alive_request("POST", "/v1/authenticate", headers) + b'{"challenge": ')
    connection.close()
    record = logs.wait_for(request_record("/v1/authenticate"))
    assert record.status == 499 and record.levelno == logging.INFO  # type: ignore[attr-defined]
    assert logs.problems() == []
    metrics = server.client().get("/metrics").text
    assert 'route="/v1/authenticate",status="499"} 1.0' in metrics
    assert 'status="500"' not in metrics


@SQLITE_ONLY
async def test_invalid_utf8_in_a_text_frame_closes_with_1007_quietly(
    server: RunningServer, logs: LogRecords
) -> None:
    for url in ("/atomic/v1/live/notifications", f"/v1/qr?host={room_key()}"):
        socket = await websockets.connect(server.ws_url + url)
        await socket.send(b"\xff\xfe not UTF-8", text=True)
        assert (await closed(socket))[0] == 1007
    assert logs.problems() == []


# --- 8. private database files -------------------------------------------------------------------


def test_the_database_folder_and_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "deployment" / "data"
    database = folder / "ledgersync.sqlite"
    umask = os.umask(0o022)  # the usual umask, which gave 0755 and 0644
    try:  # the default layout: data/ledgersync.sqlite and data/server-key.json
        config = server_config(f"sqlite:///{database}", tmp_path, key_file=folder / "key.json")
        server = RunningServer(config, ManualClock())
        server.start()
    finally:
        os.umask(umask)
    try:
        member = new_member(server.client())
        assert member.post(1, b64("x")).json() == {"status": "updated"}
        modes = {
            path.name: stat.S_IMODE(path.stat().st_mode) for path in (folder, *folder.iterdir())
        }
        assert modes == {
            "data": 0o700,
            "key.json": 0o600,
            "ledgersync.sqlite": 0o600,
            "ledgersync.sqlite-wal": 0o600,
            "ledgersync.sqlite-shm": 0o600,
        }
    finally:
        server.stop()


# --- 9. a closed stream's path is closed to Cloud Sync -------------------------------------------


async def test_a_closed_stream_refuses_cloud_sync_requests_for_its_path(
    server: RunningServer,
) -> None:
    client = server.client()
    trustchain, device, (kept, removed) = created_trustchain(client, members=2)
    keeper = login_member(client, kept, trustchain.id)  # tokens taken before the rotation
    leaver = login_member(client, removed, trustchain.id)
    old = {"id": trustchain.id, "path": app_path(0)}

    def call(method: str, token: str, version: int | None = None) -> httpx2.Response:
        params = old if version is None else {**old, "version": str(version)}
        body = {"payload": b64(f"{method} {version}")} if method == "POST" else None
        return client.request(
            method, "/atomic/v1/live", params=params, json=body, headers=bearer(token)
        )

    assert call("POST", keeper.token, 1).json() == {"status": "updated"}
    watcher = await subscribe(server.ws_url, keeper.token)
    assert await next_frame(watcher) == "1"
    rotate(device, trustchain, 1, kept)  # m/0'/16'/1' holds `kept` only; m/0'/16'/0' is closed
    assert await next_frame(watcher) == "0"  # the old document went with its stream
    await watcher.close()

    def refused(response: httpx2.Response) -> None:
        assert response.status_code == 401, response.text
        assert "path does not match" in error_message(response)

    def no_data(response: httpx2.Response) -> None:
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "no-data"}

    # The path serves nothing any more, before the rotation's own clean-up: "no-data" is what
    # makes Ledger's clients drop their copy and restore; writing and deleting are refused
    # with the text that makes them restore.
    no_data(call("GET", leaver.token))
    refused(call("POST", leaver.token, 2))
    refused(call("DELETE", leaver.token))
    socket = await subscribe(server.ws_url, leaver.token)
    code, reason = await closed(socket)
    assert code == 1008 and reason is not None and "path does not match" in reason
    # Ledger's rotation then deletes the old document with the keeper's pre-rotation token
    # (trustchainLifecycle): a member of the open stream may still do that, and only that.
    assert call("DELETE", keeper.token).status_code == 204
    no_data(call("GET", keeper.token))
    refused(call("POST", keeper.token, 1))
    refused(call("POST", leaver.token, 1))  # the deleted document is not re-created
    no_data(call("GET", leaver.token))
    fresh = login_member(client, kept, trustchain.id)
    new = {"id": trustchain.id, "path": app_path(1), "version": "2"}
    response = client.post(
        "/atomic/v1/live", params=new, json={"payload": b64("moved")}, headers=bearer(fresh.token)
    )
    assert response.json() == {"status": "updated"}


async def test_migration_3_removes_the_documents_of_closed_streams(database_url: str) -> None:
    """Databases from before closing a stream deleted its documents."""
    database = await connect_database(database_url)
    try:
        await apply_migrations(database, MIGRATIONS[:2])
        async with database.transaction() as connection:
            await connection.execute(
                "INSERT INTO trustchains (id, root_issuer, created_at) VALUES ('t', $1, 0)", b"k"
            )
            for path, closed in (("m/0'/16'/0'", True), ("m/0'/16'/1'", False)):
                await connection.execute(
                    "INSERT INTO streams (trustchain_id, path, height, last_hash, closed)"
                    " VALUES ('t', $1, 1, $2, $3)",
                    path,
                    b"h",
                    closed,
                )
                await connection.execute(
                    "INSERT INTO documents (slug, trustchain_id, path, version, payload,"
                    " updated_at) VALUES ('live', 't', $1, 1, 'AA==', 0)",
                    path,
                )
        assert await apply_migrations(database) == [m.version for m in MIGRATIONS[2:]]
        async with database.transaction() as connection:
            rows = await connection.fetch("SELECT path FROM documents")
        assert [row[0] for row in rows] == ["m/0'/16'/1'"]
    finally:
        await database.close()
