"""The Key Ring's storage fast paths, on both databases: reads on a snapshot that waits for no
writer, used challenges group committed and single-use under concurrency, the amortised sweep
of expired ones and its index (migrations 4 and 5), and the stream caches, exact even when
another process writes the same database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import httpx2
import pytest

from ledgersync.protocol import KeyPair, resolve_stream
from ledgersync.server.storage import MIGRATIONS, NewBlocks, StreamInfo, connect, open_storage
from ledgersync.server.storage.database import Database
from ledgersync.server.storage.keyring import (
    CHALLENGE_GRACE_SECONDS,
    KeyRingStore,
    StreamStateCache,
)
from ledgersync.server.storage.migrations import apply_migrations

from ..support.keyring import app_path, created_trustchain, login_device, login_member, stream_hex
from ..support.servers import RunningServer

TRUSTCHAIN_ID = "00" + "22" * 32
#: A bound on waits that must not happen: reaching it fails the test instead of hanging it.
NO_WAIT_SECONDS = 10


def test_a_challenge_answered_concurrently_is_used_once(database_url: str) -> None:
    """Twenty users of one challenge at once (one group commit on SQLite): one wins."""

    async def scenario() -> list[bool]:
        storage = await open_storage(database_url)
        try:
            store = storage.keyring
            uses = (store.use_challenge(b"c" * 16, expires_at=500, now=0) for _ in range(20))
            return list(await asyncio.gather(*uses))
        finally:
            await storage.close()

    results = asyncio.run(scenario())
    assert sorted(results, reverse=True) == [True] + [False] * 19


def test_the_sweep_runs_at_most_once_a_second_and_still_removes_expired(
    database_url: str,
) -> None:
    long_expired = -CHALLENGE_GRACE_SECONDS - 1  # past its grace period at now = 0

    async def scenario() -> None:
        storage = await open_storage(database_url)
        try:
            store = storage.keyring

            async def used(data: bytes, expires_at: int, now: int) -> bool:
                """Whether ``data`` was still recorded as used (False: it is now)."""
                return not await store.use_challenge(data * 16, expires_at, now)

            assert not await used(b"a", long_expired, -10_000)
            assert not await used(b"b", long_expired, -10_000)
            assert not await used(b"x", 5_000, 0)  # sweeps a and b
            assert not await used(b"a", long_expired, 0)  # forgotten (recorded again)
            assert not await used(b"c", long_expired, 0)
            assert not await used(b"y", 5_000, 0)  # same second: no sweep
            assert await used(b"c", long_expired, 0)
            assert not await used(b"d", long_expired, 0)
            assert not await used(b"z", 5_000, 1)  # next second: sweeps c, d and a again
            assert not await used(b"d", long_expired, 1)
            for data in (b"x", b"y", b"z"):  # unexpired ones are kept
                assert await used(data, 5_000, 1)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_migrations_4_and_5_index_challenge_expiry_on_an_existing_database(
    database_url: str,
) -> None:
    """4 indexed the issued challenges' expiry; 5 replaces them by the used ones, indexed."""

    async def index_used(database: Database, table: str, index: str) -> bool:
        if database.dialect == "sqlite":
            [plan] = await database.read_snapshot(
                [(f"EXPLAIN QUERY PLAN DELETE FROM {table} WHERE expires_at < $1", (0,))]
            )
            return any(index in str(row[-1]) for row in plan)
        [rows] = await database.read_snapshot(
            [("SELECT indexdef FROM pg_indexes WHERE indexname = $1", (index,))]
        )
        return bool(rows) and "(expires_at)" in str(rows[0][0])

    async def scenario() -> None:
        database = await connect(database_url)
        try:
            assert await apply_migrations(database, MIGRATIONS[:3]) == [1, 2, 3]
            async with database.transaction() as connection:
                await connection.execute(
                    "INSERT INTO challenges (data, expires_at) VALUES ($1, $2)", b"k" * 16, 42
                )
            assert await apply_migrations(database, MIGRATIONS[:4]) == [4]
            assert await index_used(database, "challenges", "challenges_expires_at")
            [kept] = await database.read_snapshot([("SELECT expires_at FROM challenges", ())])
            assert [int(row[0]) for row in kept] == [42]  # data kept
            assert await apply_migrations(database) == [5]
            assert await index_used(database, "used_challenges", "used_challenges_expires_at")
            [tables] = await database.read_snapshot([(TABLES[database.dialect], ())])
            names = {str(row[0]) for row in tables}
            assert "used_challenges" in names and "challenges" not in names
            store = KeyRingStore(database)
            assert await store.use_challenge(b"k" * 16, expires_at=42, now=0)
            assert not await store.use_challenge(b"k" * 16, expires_at=42, now=0)
        finally:
            await database.close()

    asyncio.run(scenario())


TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
}


def test_reads_see_committed_data_only_and_wait_for_no_writer(database_url: str) -> None:
    async def scenario() -> None:
        storage = await open_storage(database_url)
        try:
            store, database = storage.keyring, storage.database
            root = NewBlocks("m/", None, (b"block-0",), 1, b"h0", False, (b"k",))
            async with database.transaction() as connection:  # a writer in progress
                await connection.execute(
                    "INSERT INTO trustchains (id, root_issuer, created_at) VALUES ($1, $2, 0)",
                    TRUSTCHAIN_ID,
                    b"issuer",
                )
                seen = await asyncio.wait_for(store.get_trustchain(TRUSTCHAIN_ID), NO_WAIT_SECONDS)
                assert seen is None
                await connection.execute("DELETE FROM trustchains WHERE id = $1", TRUSTCHAIN_ID)
            await store.create_trustchain(TRUSTCHAIN_ID, b"issuer", root, 0)
            after = await store.get_trustchain(TRUSTCHAIN_ID)  # committed: seen at once
            assert after is not None and after.stream("m/") == StreamInfo(
                "m/", None, 1, b"h0", False
            )
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_stream_caches_follow_appends_by_another_process(database_url: str) -> None:
    """Two stores on one database, as two server processes: what one caches never hides
    what the other appended, and a deleted trustchain's entries go."""

    async def scenario() -> None:
        first = await open_storage(database_url)
        second = await connect(database_url)
        try:
            mine, theirs = first.keyring, KeyRingStore(second)
            root = NewBlocks("m/", None, (b"block-0",), 1, b"h0", False, (b"k",))
            await mine.create_trustchain(TRUSTCHAIN_ID, b"issuer", root, 0)
            before = await current_root(mine)
            assert await mine.read_streams(TRUSTCHAIN_ID, [before]) == {"m/": b"block-0"}
            assert len(mine.stream_bytes) == 1
            extension = NewBlocks("m/", None, (b"block-1",), 2, b"h1", False, ())
            await theirs.append(TRUSTCHAIN_ID, before, extension)
            after = await current_root(mine)
            assert await mine.read_streams(TRUSTCHAIN_ID, [after]) == {"m/": b"block-0block-1"}
            # the state read earlier still names exactly the blocks below its height
            assert await mine.read_streams(TRUSTCHAIN_ID, [before]) == {"m/": b"block-0"}
            assert await mine.delete_trustchain(TRUSTCHAIN_ID, 1)
            assert len(mine.stream_bytes) == 0
            assert await mine.get_trustchain(TRUSTCHAIN_ID) is None
        finally:
            await second.close()
            await first.close()

    asyncio.run(scenario())


async def current_root(store: KeyRingStore) -> StreamInfo:
    trustchain = await store.get_trustchain(TRUSTCHAIN_ID)
    assert trustchain is not None
    stream = trustchain.stream("m/")
    assert stream is not None
    return stream


def test_stream_state_cache_matches_the_exact_state_and_stays_in_budget() -> None:
    cache: StreamStateCache[str] = StreamStateCache(max_bytes=10)
    at_one = StreamInfo("m/", None, 1, b"h1", False)
    cache.put("t1", at_one, "one", size=4)
    assert cache.get("t1", at_one) == "one"
    assert cache.get("t1", StreamInfo("m/", None, 1, b"other", False)) is None
    assert cache.get("t1", StreamInfo("m/", None, 2, b"h1", False)) is None
    assert cache.get("t2", at_one) is None
    at_two = StreamInfo("m/", None, 2, b"h2", True)  # appended (and closed)
    cache.put("t1", at_two, "two", size=4)
    assert cache.get("t1", at_one) is None and cache.get("t1", at_two) == "two"
    cache.put("t2", at_one, "other", size=4)
    cache.get("t1", at_two)  # t1 used last: t2 goes first
    cache.put("t3", at_one, "third", size=4)
    assert cache.get("t2", at_one) is None
    assert cache.get("t1", at_two) == "two" and cache.get("t3", at_one) == "third"
    cache.put("t4", at_one, "too big", size=11)
    assert cache.get("t4", at_one) is None and len(cache) == 2
    cache.forget("t1")
    assert cache.get("t1", at_two) is None and len(cache) == 1


def test_an_append_through_one_server_is_seen_by_the_others_cache(
    make_server: Callable[..., RunningServer],
) -> None:
    """Server A resolves and caches the stream; server B (same database) appends; A's next
    append extends B's block and A's tree shows it."""
    server_a, server_b = make_server(), make_server()
    client_a, client_b = server_a.client(), server_b.client()
    trustchain, _, (member,) = created_trustchain(client_a)
    path = app_path(0)
    on_a = login_member(client_a, member, trustchain.id)
    on_b = login_member(client_b, member, trustchain.id)
    for session in (on_a, on_b, on_a):
        block = trustchain.add_member(path, member, KeyPair.generate())
        response = session.put_blocks(trustchain.id, path, [block])
        assert response.status_code == 204, response.text
        assert session.tree(trustchain.id).json()["m/16'"] == stream_hex(trustchain.streams[path])
    ring = server_a.app.state.keyring
    assert len(ring.resolved_streams) == 1
    blocks = trustchain.streams[path]
    at_last = StreamInfo(path, None, len(blocks), trustchain.last_hash(path), False)
    cached = ring.resolved_streams.get(trustchain.id, at_last)
    assert cached is not None
    # Kept without its decoded blocks (most of its objects): the rest is the full resolution.
    resolved = resolve_stream(b"".join(block.encode() for block in blocks))
    assert cached.blocks == () and resolved.blocks
    assert cached == replace(resolved, blocks=())
    device = login_device(client_a, trustchain.device)
    assert device.delete(f"/v1/trustchain/{trustchain.id}").status_code == 204
    assert len(ring.resolved_streams) == 0


@pytest.mark.parametrize("blocks_per_request", [1, 3])
def test_cached_appends_still_check_every_rule(
    client: httpx2.Client, blocks_per_request: int
) -> None:
    """After a cached append, a bad block is still refused and nothing of it is stored."""
    trustchain, device, (member,) = created_trustchain(client)
    path = app_path(0)
    good = [
        trustchain.add_member(path, member, KeyPair.generate()) for _ in range(blocks_per_request)
    ]
    assert device.put_blocks(trustchain.id, path, good).status_code == 204  # now cached
    stranger = KeyPair.generate()
    forged = trustchain.add_member(path, stranger, KeyPair.generate())  # not a member
    response = device.put_blocks(trustchain.id, path, [forged])
    assert response.status_code == 400 and response.json()["rule"] == "member"
    trustchain.streams[path].pop()
    assert device.tree(trustchain.id).json()["m/16'"] == stream_hex(trustchain.streams[path])


def test_closing_a_stream_deletes_each_of_its_documents(database_url: str) -> None:
    async def scenario() -> None:
        storage = await open_storage(database_url)
        try:
            store = storage.keyring
            root = NewBlocks("m/", None, (b"block-0",), 1, b"h0", False, (b"k",))
            await store.create_trustchain(TRUSTCHAIN_ID, b"issuer", root, 0)
            async with storage.database.transaction() as connection:
                for slug, path in [("b", "m/"), ("a", "m/"), ("c", "m/"), ("a", "m/x")]:
                    await connection.execute(
                        "INSERT INTO documents (slug, trustchain_id, path, version, payload,"
                        " updated_at) VALUES ($1, $2, $3, 1, 'p', 0)",
                        slug,
                        TRUSTCHAIN_ID,
                        path,
                    )
            close = NewBlocks("m/", None, (b"block-1",), 2, b"h1", True, ())
            assert await store.append(TRUSTCHAIN_ID, await current_root(store), close) == [
                "a",
                "b",
                "c",
            ]
            [left] = await storage.database.read_snapshot(
                [("SELECT slug, path FROM documents ORDER BY slug", ())]
            )
            assert [tuple(row) for row in left] == [("a", "m/x")]
        finally:
            await storage.close()

    asyncio.run(scenario())
