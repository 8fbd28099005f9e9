"""The QR-pairing relay over real websockets."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from ledgersync.protocol import KeyPair

from ..support.servers import RunningServer

WAIT = 10  # upper bound for an expected event; never a synchronisation sleep

# The relay does not touch the database: one backend is enough.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def host_key() -> str:
    return KeyPair.generate().public_key.hex()


@contextmanager
def peer(server: RunningServer, host: str) -> Iterator[ClientConnection]:
    with connect(f"{server.ws_url}/v1/qr?host={host}", open_timeout=WAIT) as connection:
        yield connection


def refused_status(server: RunningServer, query: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws_url}/v1/qr{query}", open_timeout=WAIT)
    status: int = refused.value.response.status_code
    return status


def closed_by_server(connection: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        connection.recv(timeout=WAIT)
    frame = closed.value.rcvd
    assert frame is not None, "the server closed without a close frame"
    return frame.code, frame.reason


def test_frames_go_verbatim_to_the_other_peer_only(server: RunningServer) -> None:
    host = host_key()
    message = json.dumps({"version": 1, "publisher": host, "message": "InitiateHandshake",
                          "payload": {"ephemeral_public_key": host_key()}})  # fmt: skip
    with peer(server, host) as first, peer(server, host) as second:
        second.send(message)
        assert first.recv(timeout=WAIT) == message
        first.send("réponse ✓")
        assert second.recv(timeout=WAIT) == "réponse ✓"  # not its own frame echoed back
        first.send(b"\x00\x01binary")
        assert second.recv(timeout=WAIT) == b"\x00\x01binary"
        second.send("last")
        assert first.recv(timeout=WAIT) == "last"


def test_frames_sent_alone_are_held_for_the_next_peer(server: RunningServer) -> None:
    host = host_key()
    with peer(server, host) as first:
        first.send("one")
        first.send("two")
        with peer(server, host) as second:
            assert second.recv(timeout=WAIT) == "one"
            assert second.recv(timeout=WAIT) == "two"
            second.send("ping")
            assert first.recv(timeout=WAIT) == "ping"
            first.send("pong")
            assert second.recv(timeout=WAIT) == "pong"


def test_rooms_are_separate(server: RunningServer) -> None:
    one, two = host_key(), host_key()
    with (
        peer(server, one) as a1,
        peer(server, one) as a2,
        peer(server, two) as b1,
        peer(server, two) as b2,
    ):
        a1.send("for a2")
        b1.send("for b2")
        assert a2.recv(timeout=WAIT) == "for a2"
        assert b2.recv(timeout=WAIT) == "for b2"


def test_a_third_peer_is_refused(server: RunningServer) -> None:
    host = host_key()
    with peer(server, host) as first, peer(server, host) as second:
        assert refused_status(server, f"?host={host}") == 403
        first.send("still works")
        assert second.recv(timeout=WAIT) == "still works"


@pytest.mark.parametrize("query", ["", "?host=", "?host=abcd", "?host=" + "zz" * 33])
def test_a_bad_host_is_refused(server: RunningServer, query: str) -> None:
    assert refused_status(server, query) == 403


def test_when_a_peer_leaves_the_other_is_disconnected(server: RunningServer) -> None:
    host = host_key()
    with peer(server, host) as first:
        with peer(server, host) as second:
            second.send("bye")
            assert first.recv(timeout=WAIT) == "bye"
        assert closed_by_server(first) == (1000, "peer left")
    # the room is gone: a new pairing can use the same host
    with peer(server, host) as again, peer(server, host) as other:
        again.send("new session")
        assert other.recv(timeout=WAIT) == "new session"


def test_oversized_frames_close_the_connection(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(ws_max_frame_bytes=1024)
    host = host_key()
    with peer(server, host) as first, peer(server, host) as second:
        first.send("x" * 1000)
        assert second.recv(timeout=WAIT) == "x" * 1000
        first.send("y" * 2000)
        code, _ = closed_by_server(first)
        assert code == 1009
        assert closed_by_server(second)[0] == 1000


def test_idle_rooms_are_closed(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(qr_idle_timeout=0.3)
    host = host_key()
    with peer(server, host) as first, peer(server, host) as second:
        assert closed_by_server(first) == (1000, "idle timeout")
        assert closed_by_server(second) == (1000, "idle timeout")


def test_traffic_keeps_a_room_open(make_server: Callable[..., RunningServer]) -> None:
    # Each round trip must come within the idle timeout: long enough for a busy machine.
    server = make_server(qr_idle_timeout=1.0)
    host = host_key()
    with peer(server, host) as first, peer(server, host) as second:
        started = time.monotonic()
        exchanged = 0
        while time.monotonic() - started < 2.5:  # two and a half idle periods of traffic
            first.send("ping")
            assert second.recv(timeout=WAIT) == "ping"
            exchanged += 1
        second.send("still open")
        assert first.recv(timeout=WAIT) == "still open"
        assert closed_by_server(first) == (1000, "idle timeout")  # once traffic stops
        assert exchanged > 10


def test_room_count_is_bounded(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(qr_max_rooms=1)
    with peer(server, host_key()):
        assert refused_status(server, f"?host={host_key()}") == 403


def test_rooms_are_counted_in_metrics(server: RunningServer) -> None:
    client = server.client()
    host = host_key()
    with peer(server, host) as first, peer(server, host) as second:
        first.send("counted")
        assert second.recv(timeout=WAIT) == "counted"
        metrics = client.get("/metrics").text
        assert "ledgersync_qr_rooms 1.0" in metrics
        assert "ledgersync_qr_frames_relayed_total 1.0" in metrics
