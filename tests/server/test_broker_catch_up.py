"""``PostgresBroker.caught_up`` on a real PostgreSQL: once it returns True, every notification
committed before the call has been handed to the ordered handlers, however many callers wait
at once; when the LISTEN connection is gone it says False instead of vouching."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from ledgersync.server.broker import CLOUDSYNC_CHANNEL, LISTENER_NAME, PostgresBroker
from ledgersync.server.broker_format import encode_single
from ledgersync.testing import EmbeddedPostgres

from ..support import DEADLINE


@pytest.fixture
def database(ledgersync_postgres: EmbeddedPostgres) -> str:
    return ledgersync_postgres.create_database()


@pytest.fixture
async def broker(database: str) -> AsyncIterator[PostgresBroker]:
    opened = await PostgresBroker.open(database, channels=(CLOUDSYNC_CHANNEL,))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def committer(database: str) -> AsyncIterator[asyncpg.Connection]:
    """Another process's connection: its commits reach the broker only through LISTEN."""
    connection = await asyncpg.connect(database)
    try:
        yield connection
    finally:
        await connection.close()


async def commit(connection: asyncpg.Connection, sequence: int) -> str:
    message = f"message {sequence}"
    payload = encode_single("0" * 12, sequence, message)
    await connection.execute("SELECT pg_notify($1, $2)", CLOUDSYNC_CHANNEL, payload)
    return message


async def test_every_commit_before_the_call_has_been_received(
    broker: PostgresBroker, committer: asyncpg.Connection
) -> None:
    received: list[str] = []
    broker.subscribe_ordered(CLOUDSYNC_CHANNEL, received.append)
    for sequence in range(1, 101):
        message = await commit(committer, sequence)
        assert await broker.caught_up()
        assert received[-1:] == [message], f"commit {sequence} not received on return"
    assert received == [f"message {sequence}" for sequence in range(1, 101)]


async def test_callers_at_once_share_rounds_and_all_are_caught_up(
    broker: PostgresBroker, committer: asyncpg.Connection
) -> None:
    received: list[str] = []
    broker.subscribe_ordered(CLOUDSYNC_CHANNEL, received.append)
    for sequence in range(1, 21):
        message = await commit(committer, sequence)

        async def caller(expected: str) -> bool:
            caught = await broker.caught_up()
            return caught and expected in received

        async with asyncio.timeout(DEADLINE):
            assert all(await asyncio.gather(*(caller(message) for _ in range(50))))


async def test_a_lost_listener_vouches_for_nothing(
    broker: PostgresBroker, committer: asyncpg.Connection
) -> None:
    lost = asyncio.Event()
    broker.on_continuity(lambda receiving: None if receiving else lost.set())
    terminated = await committer.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = $1",
        LISTENER_NAME,
    )
    assert terminated >= 1
    async with asyncio.timeout(DEADLINE):
        await lost.wait()
    # It may already listen again (then it can vouch); while it does not, it must not.
    assert not await broker.caught_up() or broker.listening
