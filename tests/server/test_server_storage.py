"""The storage layer on both databases: URLs, migrations, durability settings."""

from __future__ import annotations

import asyncio

import pytest

from ledgersync.server.storage import MIGRATIONS, DatabaseUrlError, connect, open_storage
from ledgersync.server.storage.migrations import apply_migrations


def test_migrations_run_once(database_url: str) -> None:
    async def scenario() -> None:
        storage = await open_storage(database_url)
        try:
            assert await apply_migrations(storage.database) == []
            async with storage.database.transaction() as connection:
                rows = await connection.fetch("SELECT version FROM schema_migrations")
            assert sorted(int(row[0]) for row in rows) == [m.version for m in MIGRATIONS]
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_processes_starting_together_migrate_once(database_url: str) -> None:
    async def scenario() -> list[list[int]]:
        databases = [await connect(database_url) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(apply_migrations(db) for db in databases)))
        finally:
            for database in databases:
                await database.close()

    results = asyncio.run(scenario())
    assert sorted(results) == [[], [], [], [m.version for m in MIGRATIONS]]


def test_a_failed_transaction_writes_nothing(database_url: str) -> None:
    async def scenario() -> None:
        storage = await open_storage(database_url)
        try:
            with pytest.raises(RuntimeError):
                async with storage.database.transaction() as connection:
                    await connection.execute(
                        "INSERT INTO used_challenges (data, expires_at) VALUES ($1, $2)",
                        b"x" * 16,
                        1,
                    )
                    raise RuntimeError("abort")
            assert await storage.keyring.use_challenge(b"x" * 16, expires_at=1, now=0)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_challenges_are_used_once_and_forgotten_an_hour_after_expiry(database_url: str) -> None:
    async def scenario() -> None:
        storage = await open_storage(database_url)
        store = storage.keyring
        try:
            assert await store.use_challenge(b"a" * 16, expires_at=100, now=0)
            assert not await store.use_challenge(b"a" * 16, expires_at=100, now=0)
            assert await store.use_challenge(b"b" * 16, expires_at=100, now=0)
            assert await store.use_challenge(b"c" * 16, expires_at=10_000, now=100 + 3600)
            assert not await store.use_challenge(b"b" * 16, expires_at=100, now=100 + 3600)
            assert await store.use_challenge(b"d" * 16, expires_at=10_000, now=100 + 3601)
            assert await store.use_challenge(b"b" * 16, expires_at=100, now=100 + 3601)  # purged
            assert not await store.use_challenge(b"c" * 16, expires_at=10_000, now=100 + 3601)
        finally:
            await storage.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_is_durable_wal(database_url: str) -> None:
    async def scenario() -> list[object]:
        storage = await open_storage(database_url)
        try:
            async with storage.database.transaction() as connection:
                return [
                    (await connection.fetchrow(f"PRAGMA {name}") or [None])[0]
                    for name in ("journal_mode", "synchronous", "foreign_keys")
                ]
        finally:
            await storage.close()

    assert asyncio.run(scenario()) == ["wal", 2, 1]  # WAL, FULL, on


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:/relative", "data.sqlite"])
def test_unknown_database_urls(url: str) -> None:
    with pytest.raises(DatabaseUrlError):
        asyncio.run(connect(url))
