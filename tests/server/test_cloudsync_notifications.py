"""The notifications websocket (``/atomic/v1/{slug}/notifications``) over real websockets, on
SQLite and PostgreSQL: token first, current version, pushes after commits, ping/pong, token
expiry on an open socket, refusals."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest
import websockets

from ..support.cloudsync import closed, new_member, next_frame, subscribe
from ..support.payloads import b64
from ..support.servers import RunningServer


async def test_subscribers_get_each_committed_version(server: RunningServer) -> None:
    client = server.client()
    writer, stranger = new_member(client), new_member(client)
    assert writer.post(4, b64("first")).json() == {"status": "updated"}
    assert writer.post(7, b64("other"), slug="other").json() == {"status": "updated"}
    assert stranger.post(1, "stranger").json() == {"status": "updated"}
    socket = await subscribe(server.ws_url, writer.token)
    other_slug = await subscribe(server.ws_url, writer.token, slug="other")
    elsewhere = await subscribe(server.ws_url, stranger.token)
    try:
        # the current version, once, at first (this also shows the subscription is live)
        assert await next_frame(socket) == "4"
        assert await next_frame(other_slug) == "7"
        assert await next_frame(elsewhere) == "1"
        assert writer.post(5, b64("second")).json() == {"status": "updated"}
        assert await next_frame(socket) == "5"
        assert writer.post(5, b64("refused")).json()["status"] == "out-of-sync"  # no notification
        assert writer.post(6, b64("third")).json() == {"status": "updated"}
        assert await next_frame(socket) == "6"
        assert writer.delete().status_code == 204
        assert await next_frame(socket) == "0"  # deleted: back to no data
        # the other slug and the other trustchain heard nothing of it: their first frame is
        # the one caused by their own documents' writes
        assert stranger.post(2, b64("x")).json() == {"status": "updated"}
        assert await next_frame(elsewhere) == "2"
        assert writer.post(8, b64("y"), slug="other").json() == {"status": "updated"}
        assert await next_frame(other_slug) == "8"
    finally:
        for each in (socket, other_slug, elsewhere):
            await each.close()


async def test_deleting_the_trustchain_tells_its_documents_subscribers(
    server: RunningServer,
) -> None:
    client = server.client()
    member, stranger = new_member(client), new_member(client)
    assert member.post(3, b64("x")).json() == {"status": "updated"}
    assert stranger.post(1, b64("y")).json() == {"status": "updated"}
    live = await subscribe(server.ws_url, member.token)
    empty_slug = await subscribe(server.ws_url, member.token, slug="other")
    elsewhere = await subscribe(server.ws_url, stranger.token)
    try:
        assert await next_frame(live) == "3"
        assert await next_frame(empty_slug) == "0"  # subscribed: a slug without data says 0
        assert await next_frame(elsewhere) == "1"
        response = member.session.delete(f"/v1/trustchain/{member.trustchain_id}")
        assert response.status_code == 204
        assert await next_frame(live) == "0"  # its document is gone with the trustchain
        assert await next_frame(empty_slug) == "0"  # told too: nothing can be stored there
        # the other trustchain heard nothing: its next frame is its own next write
        assert stranger.post(2, b64("z")).json() == {"status": "updated"}
        assert await next_frame(elsewhere) == "2"
    finally:
        for each in (live, empty_slug, elsewhere):
            await each.close()


async def test_ping_pong_and_a_silent_client_is_closed(
    make_server: Callable[..., RunningServer],
) -> None:
    # A client has one interval to answer a ping: long enough for a busy machine.
    server = make_server(cloudsync_ping_interval=1.0)
    member = new_member(server.client())
    socket = await subscribe(server.ws_url, member.token)
    try:
        assert await next_frame(socket, skip_pings=False) == "0"  # subscribed, no document
        assert await next_frame(socket, skip_pings=False) == "ping"
        await socket.send("pong")
        assert await next_frame(socket, skip_pings=False) == "ping"
        # no pong this time: closed at the next ping
        assert await closed(socket) == (1000, "no pong")
    finally:
        await socket.close()


async def test_token_expiry_on_an_open_socket(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(cloudsync_ping_interval=1.0)  # pings go on; each answered in time
    member = new_member(server.client())
    assert member.post(1, b64("x")).json() == {"status": "updated"}
    socket = await subscribe(server.ws_url, member.token)
    try:
        assert await next_frame(socket) == "1"
        server.clock.advance(301)  # the access token expired; its refresh window is open
        assert await next_frame(socket) == "JWT expired"
        assert member.session.refresh().status_code == 200
        assert member.post(2, b64("while expired")).json()["status"] == "updated"  # not pushed
        await socket.send(member.token)
        # the fresh token resumes the subscription with the current version: nothing missed,
        # and the write made while expired was not pushed (else "2" would come twice)
        assert await next_frame(socket) == "2"
        assert member.post(3, b64("after")).json()["status"] == "updated"
        assert await next_frame(socket) == "3"
    finally:
        await socket.close()


async def test_an_expired_token_must_be_replaced_in_time(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(cloudsync_auth_timeout=0.5)
    member = new_member(server.client())
    server.clock.advance(301)
    socket = await subscribe(server.ws_url, member.token)
    try:
        assert await next_frame(socket) == "JWT expired"
        assert await closed(socket) == (1008, "no valid token")
    finally:
        await socket.close()


async def test_no_token_in_time_closes(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(cloudsync_auth_timeout=0.3)
    socket = await websockets.connect(f"{server.ws_url}/atomic/v1/live/notifications")
    try:
        assert await closed(socket) == (1008, "no valid token")
    finally:
        await socket.close()


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ("not a token", 1008, "Invalid JWT"),
        (b"\x00binary", 1003, "text frames only"),
        ("x" * 20_000, 1009, "frame too large"),
    ],
)
async def test_bad_first_frames_close_the_socket(
    server: RunningServer, frame: str | bytes, code: int, reason: str
) -> None:
    socket = await websockets.connect(f"{server.ws_url}/atomic/v1/live/notifications")
    try:
        await socket.send(frame)
        received_code, received_reason = await closed(socket)
        assert received_code == code
        assert received_reason is not None and received_reason.startswith(reason)
    finally:
        await socket.close()


async def test_a_token_without_permission_is_refused(
    server: RunningServer, client: httpx2.Client
) -> None:
    from ledgersync.protocol import KeyPair

    from ..support.keyring import login_device

    device = login_device(client, KeyPair.generate())  # owns no trustchain: permissions {}
    socket = await subscribe(server.ws_url, device.token)
    try:
        assert await closed(socket) == (1008, "JWT contains no permission")
    finally:
        await socket.close()


async def test_a_bad_slug_is_refused_at_the_handshake(server: RunningServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{server.ws_url}/atomic/v1/bad%20slug/notifications")
    assert refused.value.response.status_code == 403
