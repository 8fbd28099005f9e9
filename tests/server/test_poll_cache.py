"""The poll cache (``server/cloudsync/versions.py``) against real server processes: a
``GET`` that only confirms the client's version is answered from memory, and no answer is
stale: not right after a write acknowledged by another process (the process catches up with
the broker before it answers from memory), nor after deletes (of a document, of its stream by
a key rotation, of its trustchain), nor after the broker's LISTEN connection drops, nor on
SQLite when another process opens the same file.

Changes are made the ways the server makes them (HTTP through another process). Two tests
also change a row behind the servers' backs (plain SQL, no notification): the only way to
see that an answer came from memory, and to stand for a change whose notification a
dropped LISTEN connection missed. Every wait is for an event (a notification received by a
subscriber, a response), never for time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from websockets.asyncio.client import ClientConnection

from ledgersync.server.broker import LISTENER_NAME
from ledgersync.testing import EmbeddedPostgres, LocalServer

from ..support import DEADLINE
from ..support.cloudsync import Member, new_member, next_frame, subscribe, version_pushed
from ..support.keyring import rotate
from ..support.payloads import b64


@dataclass
class Deployment:
    """Two server processes on one PostgreSQL database, and SQL access to it."""

    url: str
    first: LocalServer
    second: LocalServer

    async def sql(self, statement: str, *args: object) -> str:
        connection = await asyncpg.connect(self.url)
        try:
            status: str = await connection.execute(statement, *args)
            return status
        finally:
            await connection.close()


def deployment_settings(database: str, tmp_path: Path) -> dict[str, object]:
    """One deployment: one database, one key file, one public URL (the tokens' issuer)."""
    return {
        "database": database,
        "key_file": tmp_path / "server-key.json",
        "public_url": "http://ledgersync.test",
        "log_level": "warning",
    }


@pytest.fixture
def deployment(ledgersync_postgres: EmbeddedPostgres, tmp_path: Path) -> Iterator[Deployment]:
    url = ledgersync_postgres.create_database()
    settings = deployment_settings(url, tmp_path)
    first = LocalServer(tmp_path / "first", **settings).start()  # creates the keys
    second = LocalServer(tmp_path / "second", **settings).start()
    try:
        yield Deployment(url, first, second)
    finally:
        first.close()
        second.close()


def on(server: LocalServer, member: Member) -> Member:
    """``member`` talking to ``server`` (from now on)."""
    member.client = server.client()
    return member


def via(server: LocalServer, member: Member) -> Member:
    """Another client of ``member``'s document and token, talking to ``server``."""
    return replace(member, client=server.client())


@asynccontextmanager
async def subscribed(server: LocalServer, member: Member) -> AsyncIterator[ClientConnection]:
    """A notifications socket on ``server`` for ``member``'s token, closed at the end."""
    socket = await subscribe(server.ws_url, member.token)
    try:
        yield socket
    finally:
        await socket.close()


async def told(socket: ClientConnection, version: int) -> None:
    """Wait for ``version`` (``0``: deleted) to be pushed, whatever comes before it."""
    async with asyncio.timeout(DEADLINE):
        while await next_frame(socket) != str(version):
            pass


def confirmed(member: Member, version: int) -> bool:
    return bool(member.get(version=version).json() == {"status": "up-to-date"})


def remembered(member: Member, version: int) -> bool:
    """Confirmed twice: the first read, if it went to the database, is remembered."""
    return confirmed(member, version) and confirmed(member, version)


async def test_a_poll_that_confirms_the_version_is_answered_from_memory(
    deployment: Deployment,
) -> None:
    member = on(deployment.second, new_member(deployment.first.client()))
    assert member.post(1, b64("one")).json() == {"status": "updated"}
    assert confirmed(member, 1)  # read from the database, remembered
    # Behind the server's back (no notification): the database now says 5...
    await deployment.sql(
        "UPDATE documents SET version = 5 WHERE trustchain_id = $1", member.trustchain_id
    )
    assert confirmed(member, 1)  # ...but the poll did not ask it
    # Anything else than a confirmation reads the database: it holds the document.
    assert member.get(version=4).json()["version"] == 5
    assert member.get(version=1).json()["version"] == 5  # what it read is remembered


async def test_a_cached_answer_is_never_stale_after_a_write_through_another_process(
    deployment: Deployment,
) -> None:
    first, second = deployment.first, deployment.second
    writer = new_member(first.client())
    assert writer.post(1, b64("v1")).json() == {"status": "updated"}
    pollers = {server: via(server, writer) for server in (first, second)}
    sockets = {server: await subscribe(server.ws_url, writer.token) for server in (first, second)}
    try:
        for socket in sockets.values():
            await version_pushed(socket, 1)
        for version in range(1, 11):
            through, other = (first, second) if version % 2 else (second, first)
            for poller in pollers.values():
                assert remembered(poller, version)  # cached
            on(through, writer)
            assert writer.post(version + 1, b64(f"v{version + 1}")).json() == {"status": "updated"}
            await version_pushed(sockets[other], version + 1)  # the other process has it
            for poller in (pollers[other], pollers[through]):
                answer = poller.get(version=version).json()
                assert answer["status"] == "out-of-sync"
                assert (answer["version"], answer["payload"]) == (
                    version + 1,
                    b64(f"v{version + 1}"),
                )
    finally:
        for socket in sockets.values():
            await socket.close()


async def test_a_write_acknowledged_by_one_process_is_never_confirmed_stale_by_the_other(
    deployment: Deployment,
) -> None:
    """No waiting for the notification: the poll goes to the other process as soon as the
    write is acknowledged, with that process's cache holding the previous version. The
    other process catches up with the broker before it answers from memory."""
    first, second = deployment.first, deployment.second
    writer = on(first, new_member(first.client()))
    poller = via(second, writer)
    assert writer.post(1, b64("v1")).json() == {"status": "updated"}
    for version in range(1, 41):
        assert remembered(poller, version)  # the other process holds `version` in memory
        assert writer.post(version + 1, b64(f"v{version + 1}")).json() == {"status": "updated"}
        answer = poller.get(version=version).json()
        assert (answer["status"], answer.get("version")) == ("out-of-sync", version + 1)


async def test_deletes_through_another_process_are_never_answered_up_to_date(
    deployment: Deployment,
) -> None:
    first, second = deployment.first, deployment.second
    member = on(first, new_member(first.client()))
    poller = via(second, member)
    async with subscribed(second, member) as socket:
        # a document deleted
        assert member.post(3, b64("three")).json() == {"status": "updated"}
        await version_pushed(socket, 3)
        assert remembered(poller, 3)
        assert member.delete().status_code == 204
        await told(socket, 0)
        assert poller.get(version=3).json() == {"status": "no-data"}
        # written again from a lower version (allowed on an empty document)
        assert member.post(2, b64("two")).json() == {"status": "updated"}
        await told(socket, 2)
        assert remembered(poller, 2)
        assert poller.get(version=3).json()["version"] == 2
        # its stream closed by a key rotation: the documents at the old path are deleted
        rotate(member.device, member.trustchain, 1, keep=member.key)
        await told(socket, 0)
        assert poller.get(version=2).json() == {"status": "no-data"}


async def test_a_trustchain_deleted_through_another_process_holds_no_cached_version(
    deployment: Deployment,
) -> None:
    first, second = deployment.first, deployment.second
    doomed = on(first, new_member(first.client()))
    assert doomed.post(1, b64("one")).json() == {"status": "updated"}
    poller = via(second, doomed)
    assert remembered(poller, 1)
    # A write after the deletion, watched on the second process: changes reach it in commit
    # order, so once the write has, the deletion has too (it announces nothing to sockets).
    fence = on(first, new_member(first.client()))
    async with subscribed(second, fence) as socket:
        assert doomed.session.delete(f"/v1/trustchain/{doomed.trustchain_id}").status_code == 204
        assert fence.post(1, b64("after")).json() == {"status": "updated"}
        await version_pushed(socket, 1)
        assert poller.get(version=1).json() == {"status": "no-data"}


async def test_the_cache_is_dropped_when_the_listen_connection_drops(
    deployment: Deployment,
) -> None:
    member = on(deployment.second, new_member(deployment.first.client()))
    assert member.post(1, b64("one")).json() == {"status": "updated"}
    assert remembered(member, 1)
    # Every process's LISTEN connection is cut; then a change they cannot be told of (as if
    # committed while they were not listening).
    terminated = await deployment.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = $1",
        LISTENER_NAME,
    )
    assert terminated != "SELECT 0"
    await deployment.sql(
        "UPDATE documents SET version = 2 WHERE trustchain_id = $1", member.trustchain_id
    )
    # Once the process has seen its connection drop, it no longer answers from memory, and
    # after it listens again it starts from what the database says. Until it has seen the
    # drop, it may still confirm version 1: each poll is a request answered at once.
    deadline = time.monotonic() + DEADLINE
    while confirmed(member, 1):
        assert time.monotonic() < deadline, "the process kept answering from memory"
    assert member.get(version=1).json()["version"] == 2
    assert confirmed(member, 2)


async def test_sqlite_another_process_on_the_same_file_turns_the_cache_off(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    settings = deployment_settings(database, tmp_path)
    with LocalServer(tmp_path / "first", **settings) as first:
        member = on(first, new_member(first.client()))
        assert member.post(1, b64("one")).json() == {"status": "updated"}
        assert remembered(member, 1)
        with LocalServer(tmp_path / "second", **settings) as second:
            writer = via(second, member)
            assert writer.post(2, b64("two")).json() == {"status": "updated"}
            assert member.get(version=1).json()["version"] == 2  # the first one was not told
        assert member.get(version=1).json()["version"] == 2  # and stays careful
