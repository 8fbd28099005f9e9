"""Group commit on PostgreSQL (``storage/database.py``): writes submitted while a commit is in
progress are committed together, in one transaction, announced in commit order; when one of
them fails, the batch is rolled back and each write runs again alone, so that it fails alone
and every other write is committed exactly once. A real embedded PostgreSQL, no server."""

from __future__ import annotations

import asyncio
import random

from ledgersync.server.storage import DocumentKey, TrustchainDeleted, WriteOutcome, open_storage
from ledgersync.testing import EmbeddedPostgres

from .test_group_commit import WRITERS, RecordingFeed, document

PATH = "m/0'/16'/0'"


def accepted_message(trustchain: str, version: int) -> str:
    return f'["live", "{trustchain}", "{PATH}", {version}]'


def test_concurrent_writes_share_a_transaction(ledgersync_postgres: EmbeddedPostgres) -> None:
    url = ledgersync_postgres.create_database()

    async def scenario() -> None:
        storage = await open_storage(url)
        feed = RecordingFeed()
        storage.announce_changes(feed)
        database = storage.database
        try:
            keys = [DocumentKey("live", f"t{n}", PATH) for n in range(WRITERS)]
            before = database.commits  # type: ignore[attr-defined]
            outcomes = await asyncio.gather(
                *(storage.documents.write(key, document(1, f"d{n}")) for n, key in enumerate(keys))
            )
            assert outcomes == [WriteOutcome(True, None)] * WRITERS
            # submitted together, before the first commit began: one or two transactions (one
            # per write without grouping)
            assert database.commits - before <= 2  # type: ignore[attr-defined]
            # announced in commit order, which is the lock order (trustchain ids sorted)
            in_lock_order = sorted(f"t{n}" for n in range(WRITERS))
            assert feed.committed_messages == [accepted_message(t, 1) for t in in_lock_order]
            for n, key in enumerate(keys):
                stored = await storage.documents.get(key)
                assert stored is not None and (stored.version, stored.payload) == (1, f"d{n}")
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_a_failing_write_fails_alone_and_the_others_commit_once(
    ledgersync_postgres: EmbeddedPostgres,
) -> None:
    url = ledgersync_postgres.create_database()

    async def scenario() -> None:
        storage = await open_storage(url)
        feed = RecordingFeed()
        storage.announce_changes(feed)
        try:
            async with storage.database.transaction() as connection:
                await connection.execute(
                    "INSERT INTO deleted_trustchains (id, deleted_at) VALUES ($1, $2)", "gone", 0
                )
            first = storage.documents.write(DocumentKey("live", "first", PATH), document(1, "f"))
            writes = [
                storage.documents.write(DocumentKey("live", f"t{n}", PATH), document(1, f"d{n}"))
                for n in range(WRITERS)
            ]
            # in the same batch as the others: it raises once the batch has written some
            writes.insert(
                WRITERS // 2,
                storage.documents.write(DocumentKey("live", "gone", PATH), document(1, "x")),
            )
            outcomes = await asyncio.gather(first, *writes, return_exceptions=True)
            refused = outcomes.pop(1 + WRITERS // 2)
            assert isinstance(refused, TrustchainDeleted)
            assert outcomes == [WriteOutcome(True, None)] * (WRITERS + 1)
            # each committed write announced once, in commit order (one after the other, in
            # lock order: trustchain ids sorted)
            expected = [accepted_message("first", 1)]
            expected += [accepted_message(t, 1) for t in sorted(f"t{n}" for n in range(WRITERS))]
            assert feed.committed_messages == expected
            rows = await storage.database.read_row("SELECT count(*) FROM documents")
            assert rows is not None and rows[0] == WRITERS + 1
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_concurrent_batches_take_their_locks_in_one_order(
    ledgersync_postgres: EmbeddedPostgres,
) -> None:
    """Writers each writing the same few documents in their own random orders keep several
    batches in flight at once; were a batch to lock its rows in arrival order, two of them
    would sooner or later wait for each other (a deadlock: PostgreSQL aborts one after a
    second, and the batch runs again plan by plan). In lock order, no batch is ever rerun."""
    url = ledgersync_postgres.create_database()
    documents, writers, rounds = 3, 32, 10

    async def scenario() -> None:
        storage = await open_storage(url)
        storage.announce_changes(RecordingFeed())
        database = storage.database
        keys = [DocumentKey("live", f"t{n}", PATH) for n in range(documents)]
        versions = dict.fromkeys(keys, 0)
        accepted = 0

        async def writer(seed: int) -> None:
            nonlocal accepted
            rng = random.Random(seed)
            for _ in range(rounds):
                for key in rng.sample(keys, len(keys)):
                    # out of step with the other writers (else all write in one batch at a time)
                    for _ in range(rng.randrange(4)):
                        await asyncio.sleep(0)
                    version = versions[key] + 1
                    outcome = await storage.documents.write(key, document(version, f"w{seed}"))
                    if outcome.accepted:
                        accepted += 1
                        versions[key] = max(versions[key], version)
                    else:
                        assert outcome.current is not None
                        versions[key] = max(versions[key], outcome.current.version)

        try:
            await asyncio.gather(*(writer(seed) for seed in range(writers)))
            assert database.batches_rerun == 0  # type: ignore[attr-defined]
            # every accepted write is one version of one document, none lost or doubled
            stored = [await storage.documents.get(key) for key in keys]
            assert sum(item.version for item in stored if item is not None) == accepted
            # the batches were concurrent and grouped (else the test proves nothing)
            assert database.commits < documents * writers * rounds  # type: ignore[attr-defined]
        finally:
            await storage.close()

    asyncio.run(scenario())
