"""Writes of Cloud Sync documents as plans (``storage/database.py``): on SQLite, concurrent
writes are committed together (one transaction, one fsync), each in its savepoint, each
answered once that commit returned; a write that fails its own rule fails alone. The same
plans run on PostgreSQL, grouped too (several batches at once; see
test_postgres_group_commit.py). Real databases, no server."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from ledgersync.server.storage import (
    Document,
    DocumentKey,
    Storage,
    TrustchainDeleted,
    WriteOutcome,
    open_storage,
)
from ledgersync.server.storage.database import SQLiteDatabase

WRITERS = 20


class RecordingFeed:
    """A change feed that keeps what it is given (the storage alone has no subscribers)."""

    def __init__(self) -> None:
        self.committed_messages: list[str] = []

    def in_transaction(self, message: str) -> tuple[str, str] | None:
        return None

    def committed(self, message: str) -> None:
        self.committed_messages.append(message)


def document(version: int, text: str) -> Document:
    return Document(version, text, 1_700_000_000_000, None)


async def write_many(storage: Storage) -> list[WriteOutcome | BaseException]:
    """:data:`WRITERS` first writes, one stale write and one to a deleted trustchain, all
    submitted at once."""
    stale = DocumentKey("live", "stale", "m/0'/16'/0'")
    assert (await storage.documents.write(stale, document(1, "one"))).accepted
    async with storage.database.transaction() as connection:
        await connection.execute(
            "INSERT INTO deleted_trustchains (id, deleted_at) VALUES ($1, $2)", "gone", 0
        )
    writes = [
        storage.documents.write(DocumentKey("live", f"t{n}", "m/0'/16'/0'"), document(1, f"d{n}"))
        for n in range(WRITERS)
    ]
    writes.insert(5, storage.documents.write(stale, document(5, "not next")))
    writes.insert(9, storage.documents.write(DocumentKey("live", "gone", "m/"), document(1, "x")))
    return list(await asyncio.gather(*writes, return_exceptions=True))


def check_outcomes(outcomes: list[WriteOutcome | BaseException]) -> None:
    stale, deleted = outcomes.pop(5), outcomes.pop(8)
    assert isinstance(stale, WriteOutcome) and not stale.accepted
    assert stale.current is not None and stale.current.version == 1  # the stored one
    assert isinstance(deleted, TrustchainDeleted)
    assert outcomes == [WriteOutcome(True, None)] * WRITERS


def test_concurrent_writes_commit_together_and_fail_alone(database_url: str) -> None:
    async def scenario() -> None:
        storage = await open_storage(database_url)
        feed = RecordingFeed()
        storage.announce_changes(feed)
        database = storage.database
        try:
            before = database.commits if isinstance(database, SQLiteDatabase) else 0
            check_outcomes(await write_many(storage))
            # a batch commits in lock order (trustchain ids sorted, see Database.run_plan)
            in_lock_order = sorted(f"t{n}" for n in range(WRITERS))
            accepted = [f'["live", "{t}", "m/0\'/16\'/0\'", 1]' for t in in_lock_order]
            if isinstance(database, SQLiteDatabase):
                # the first write alone, the deleted-trustchain row, then all the others in
                # one transaction; announced once committed, in commit order
                assert database.commits - before == 3
                assert feed.committed_messages[1:] == accepted
            else:  # grouped batches committed in parallel: commit order varies
                assert sorted(feed.committed_messages[1:]) == sorted(accepted)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_an_answered_write_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "ledgersync.sqlite"

    async def scenario() -> None:
        storage = await open_storage(f"sqlite:///{path}")
        try:
            check_outcomes(await write_many(storage))
            other = sqlite3.connect(path)  # another connection: committed data only
            try:
                rows = other.execute("SELECT count(*) FROM documents").fetchone()
            finally:
                other.close()
            assert rows == (WRITERS + 1,)
        finally:
            await storage.close()

    asyncio.run(scenario())
