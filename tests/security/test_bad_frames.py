"""Bad input on both websockets (the QR relay and Cloud Sync notifications), on both backends:
hostile handshakes and query strings, and frames that break RFC 6455 (unmasked, reserved
bits, unknown opcodes, fragmented or oversized control frames, invalid UTF-8, lying lengths,
oversized messages), plus what each endpoint refuses at the application level.

The rule: the handshake is answered (101, or a 4xx for a bad request) within the deadline;
a broken frame ends the connection with the close code RFC 6455 prescribes (or the
application's documented one), never 1011 and never silence; the server logs no internal
error (``server_log``) and still answers afterwards.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from ledgersync.protocol import KeyPair

from ..support.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_TEXT,
    RawWebSocket,
    close_frame,
    frame,
)
from ..support.logs import LogRecords
from ..support.payloads import b64url_json
from ..support.world import World

#: Close codes (RFC 6455 §7.4.1).
PROTOCOL_ERROR, UNSUPPORTED, INVALID_DATA, POLICY, TOO_BIG = 1002, 1003, 1007, 1008, 1009


def host_key() -> str:
    return KeyPair.generate().public_key.hex()


def qr_target(world: World) -> str:
    return f"/v1/qr?host={host_key()}"


def notifications_target(world: World) -> str:
    return "/atomic/v1/live/notifications"


#: The websocket routes of the table and how to open a valid connection to each.
FRAME_SWEEPS: dict[tuple[str, str], Callable[[World], str]] = {
    ("/v1/qr", "WEBSOCKET"): qr_target,
    ("/atomic/v1/{slug}/notifications", "WEBSOCKET"): notifications_target,
}
ROUTES = {
    "qr": ("/v1/qr", "WEBSOCKET"),
    "notifications": ("/atomic/v1/{slug}/notifications", "WEBSOCKET"),
}

#: Frames no endpoint may accept, and the close code RFC 6455 prescribes for each.
BROKEN_FRAMES: dict[str, tuple[list[bytes], set[int]]] = {
    "unmasked": ([frame(OP_TEXT, b"hello", mask=False)], {PROTOCOL_ERROR}),
    "reserved bit 1": ([frame(OP_TEXT, b"hello", rsv=4)], {PROTOCOL_ERROR}),
    "reserved bits 2 and 3": ([frame(OP_BINARY, b"hello", rsv=3)], {PROTOCOL_ERROR}),
    "unknown data opcode": ([frame(0x3, b"x")], {PROTOCOL_ERROR}),
    "unknown control opcode": ([frame(0xB, b"x")], {PROTOCOL_ERROR}),
    "fragmented ping": ([frame(OP_PING, b"x", fin=False)], {PROTOCOL_ERROR}),
    "ping over 125 bytes": ([frame(OP_PING, b"p" * 126)], {PROTOCOL_ERROR}),
    "continuation first": ([frame(OP_CONTINUATION, b"x")], {PROTOCOL_ERROR}),
    "new message mid-fragments": (
        [frame(OP_TEXT, b"a", fin=False), frame(OP_TEXT, b"b")],
        {PROTOCOL_ERROR},
    ),
    "close code 999": ([close_frame(999)], {PROTOCOL_ERROR}),
    "close code 1005": ([close_frame(1005)], {PROTOCOL_ERROR}),
    "close code 5000": ([close_frame(5000)], {PROTOCOL_ERROR}),
    "close with one byte": ([frame(OP_CLOSE, b"\x03")], {PROTOCOL_ERROR}),
    "close reason not UTF-8": ([close_frame(1000, b"\xff\xfe")], {INVALID_DATA}),
    "text not UTF-8": ([frame(OP_TEXT, b"\xff\xfe\xfd")], {INVALID_DATA}),
    "text with a lone surrogate": ([frame(OP_TEXT, b"\xed\xa0\x80")], {INVALID_DATA}),
    "fragments not UTF-8": (
        [frame(OP_TEXT, b"ok \xe2", fin=False), frame(OP_CONTINUATION, b"\x28\xa1")],
        {INVALID_DATA},
    ),
    "declared length 2^63-1": (
        [frame(OP_BINARY, b"", declared_length=2**63 - 1, mask=True)[:14]],
        {TOO_BIG, PROTOCOL_ERROR},
    ),
    "a message over the frame limit": ([frame(OP_BINARY, b"\x00" * (64 * 1024 + 1))], {TOO_BIG}),
    "fragments over the frame limit": (
        [frame(OP_BINARY, b"\x00" * 40_000, fin=False), frame(OP_CONTINUATION, b"\x00" * 40_000)],
        {TOO_BIG},
    ),
}


async def opened(world: World, route: str) -> tuple[RawWebSocket, int | None]:
    socket = RawWebSocket(world.server.port, FRAME_SWEEPS[ROUTES[route]](world))
    outcome = await socket.open()
    return socket, outcome.status


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("name", sorted(BROKEN_FRAMES))
async def test_broken_frames_close_the_connection(
    world: World, route: str, name: str, server_log: LogRecords
) -> None:
    frames, codes = BROKEN_FRAMES[name]
    mark = server_log.mark()
    socket, status = await opened(world, route)
    try:
        assert status == 101
        for data in frames:
            await socket.send(data)
        outcome = await socket.until_closed()
    finally:
        socket.abort()
    assert outcome.ended, "the server neither closed nor answered"
    assert outcome.close_code in codes, f"closed with {outcome.close_code}, expected {codes}"
    await server_log.finished(ROUTES[route][0], mark)  # the handler is done: all is logged
    await still_up(world)


async def still_up(world: World) -> None:
    response = await asyncio.to_thread(world.client.get, "/_info")
    assert response.status_code == 200


async def test_a_truncated_frame_then_a_reset_is_not_an_error(
    world: World, server_log: LogRecords
) -> None:
    for route in ROUTES:
        mark = server_log.mark()
        socket, status = await opened(world, route)
        assert status == 101
        await socket.send(frame(OP_TEXT, b"x" * 1000)[:300])  # half a frame, then gone
        socket.abort()
        await server_log.finished(ROUTES[route][0], mark)
    await still_up(world)


async def test_a_ping_flood_is_answered_in_order(world: World, server_log: LogRecords) -> None:
    for route in ROUTES:
        socket, status = await opened(world, route)
        try:
            assert status == 101
            await socket.send(b"".join(frame(OP_PING, str(n).encode()) for n in range(500)))
            pongs = []
            async with asyncio.timeout(10):
                while len(pongs) < 500:
                    opcode, payload = await socket.read_frame()
                    if opcode == 0xA:
                        pongs.append(payload)
            assert pongs == [str(n).encode() for n in range(500)]
        finally:
            socket.abort()
    await still_up(world)


# --- handshakes ---------------------------------------------------------------------------------

BAD_HANDSHAKES: dict[str, dict[str, str]] = {
    "no key": {"key": ""},
    "a key that is not 16 bytes": {"key": "c2hvcnQ="},
    "a key that is not base64": {"key": "!!!!!!!!!!!!!!!!!!!!!!=="},
    "version 8": {"version": "8"},
    "version garbage": {"version": "x"},
}


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("name", sorted(BAD_HANDSHAKES))
async def test_bad_handshakes_are_refused(
    world: World, route: str, name: str, server_log: LogRecords
) -> None:
    socket = RawWebSocket(world.server.port, FRAME_SWEEPS[ROUTES[route]](world))
    try:
        outcome = await socket.open(**BAD_HANDSHAKES[name])
    finally:
        socket.abort()
    assert outcome.status is not None, "the handshake was not answered"
    assert 400 <= outcome.status < 500, outcome.head[:200]
    await still_up(world)


HOSTILE_HOSTS = [
    "",
    "zz",
    "0" * 65,
    "0" * 67,
    "%00" * 33,
    "%C3%A9" * 33,
    "g" * 66,
    "a" * 9000,
]
HOSTILE_SLUGS = ["a" * 65, "%00", "%C3%BC", "a%20b", "%ff", "a" * 9000]


@pytest.mark.parametrize(
    "target",
    [f"/v1/qr?host={host}" for host in HOSTILE_HOSTS]
    + ["/v1/qr", "/v1/qr?hos=" + "0" * 66]
    + [f"/atomic/v1/{slug}/notifications" for slug in HOSTILE_SLUGS],
    ids=lambda target: target[:60],
)
async def test_hostile_websocket_queries_are_refused_at_the_handshake(
    world: World, target: str, server_log: LogRecords
) -> None:
    """Refused quickly (403, or 4xx by the HTTP layer for an overlong request line), whatever
    the length or bytes: never upgraded, never left hanging."""
    socket = RawWebSocket(world.server.port, target)
    try:
        outcome = await socket.open()
    finally:
        socket.abort()
    assert outcome.status is not None, "the handshake was left hanging"
    assert 400 <= outcome.status < 500, outcome.head[:200]
    await still_up(world)


# --- what each endpoint refuses at the application level ----------------------------------------


def notification_first_frames(world: World) -> dict[str, tuple[bytes, int]]:
    _, claims, _ = world.member.token.split(".")
    unsigned = b64url_json({"alg": "none", "typ": "JWT"}) + "." + claims + "."
    return {
        "garbage": (frame(OP_TEXT, b"garbage"), POLICY),
        "a JSON object": (frame(OP_TEXT, json.dumps({"token": "x"}).encode()), POLICY),
        "alg none": (frame(OP_TEXT, unsigned.encode()), POLICY),
        "an empty text": (frame(OP_TEXT, b""), POLICY),
        "16 KiB + 1": (frame(OP_TEXT, b"a" * (16 * 1024 + 1)), TOO_BIG),
        "binary": (frame(OP_BINARY, world.member.token.encode()), UNSUPPORTED),
    }


@pytest.mark.parametrize(
    "name", ["garbage", "a JSON object", "alg none", "an empty text", "16 KiB + 1", "binary"]
)
async def test_notifications_refuse_bad_first_frames(
    world: World, name: str, server_log: LogRecords
) -> None:
    data, code = notification_first_frames(world)[name]
    mark = server_log.mark()
    socket = RawWebSocket(world.server.port, notifications_target(world))
    try:
        assert (await socket.open()).status == 101
        await socket.send(data)
        outcome = await socket.until_closed()
    finally:
        socket.abort()
    assert outcome.ended and outcome.close_code == code, (outcome.close_code, outcome.texts)
    await server_log.finished(ROUTES["notifications"][0], mark)
    await still_up(world)


async def test_junk_after_a_valid_token_is_refused(world: World, server_log: LogRecords) -> None:
    """A subscribed socket that sends junk where a token is expected is closed (1008)."""
    socket = RawWebSocket(world.server.port, notifications_target(world))
    try:
        assert (await socket.open()).status == 101
        await socket.send(frame(OP_TEXT, world.member.token.encode()))
        await socket.send(frame(OP_TEXT, b"\x00" * 100))
        outcome = await socket.until_closed()
    finally:
        socket.abort()
    assert outcome.close_code == POLICY
    await still_up(world)


async def test_qr_relay_passes_any_frame_verbatim(world: World, server_log: LogRecords) -> None:
    """The relay is a dumb pipe: binary junk, NULs and the largest allowed frame reach the
    other peer unchanged (the peers' end-to-end encryption is their business)."""
    target = qr_target(world)
    first, second = RawWebSocket(world.server.port, target), RawWebSocket(world.server.port, target)
    junk = [b"\x00" * 10, bytes(range(256)), b"\xff" * (64 * 1024)]
    try:
        assert (await first.open()).status == 101
        assert (await second.open()).status == 101
        for data in junk:
            await first.send(frame(OP_BINARY, data))
        received = []
        async with asyncio.timeout(10):
            while len(received) < len(junk):
                opcode, payload = await second.read_frame()
                if opcode == OP_BINARY:
                    received.append(payload)
        assert received == junk
    finally:
        first.abort()
        second.abort()
    await still_up(world)
