"""Round trips to PostgreSQL on the hot read paths (``storage/database.py``,
``storage/keyring.py``): a one-statement read is one statement on the wire (a pooled
connection is not reset with one more statement when it is released), and the read that starts
every authorized Key Ring request, the trustchain with the member's streams, is one statement.
A real embedded PostgreSQL, no server; the statements are those asyncpg sends, logged."""

from __future__ import annotations

import asyncio
from typing import Any

from ledgersync.server.storage import NewBlocks, Storage, open_storage
from ledgersync.testing import EmbeddedPostgres

TRUSTCHAIN_ID = "00" + "33" * 32
MEMBER = b"\x02" + b"m" * 32
READS = 20


async def log_every_connection(storage: Storage) -> list[str]:
    """The statements every connection of the storage's pool sends from now on."""
    sent: list[str] = []
    pool: Any = storage.database._pool  # type: ignore[attr-defined]
    # All the pool's connections at once, so that each gets the logger (kept on release).
    connections = [await pool.acquire() for _ in range(pool.get_max_size())]
    for connection in connections:
        connection.add_query_logger(lambda record: sent.append(record.query))
    for connection in connections:
        await pool.release(connection)
    sent.clear()
    return sent


def test_hot_reads_are_one_statement_each(ledgersync_postgres: EmbeddedPostgres) -> None:
    url = ledgersync_postgres.create_database()

    async def scenario() -> tuple[list[str], list[str], list[Any]]:
        storage = await open_storage(url)
        try:
            root = NewBlocks("m/", None, (b"block-0",), 1, b"h0", False, (MEMBER,))
            await storage.keyring.create_trustchain(TRUSTCHAIN_ID, b"device", root, 0)
            sent = await log_every_connection(storage)
            for _ in range(READS):
                assert not await storage.keyring.was_deleted(TRUSTCHAIN_ID)
            deleted_checks = list(sent)
            sent.clear()
            found = [
                await storage.keyring.trustchain_and_member_streams(TRUSTCHAIN_ID, MEMBER)
                for _ in range(READS)
            ]
            return deleted_checks, list(sent), found
        finally:
            await storage.close()

    deleted_checks, authorizations, found = asyncio.run(scenario())
    assert len(deleted_checks) == READS, deleted_checks[:3]
    assert all(query.startswith("SELECT 1 FROM deleted_trustchains") for query in deleted_checks)
    assert len(authorizations) == READS, authorizations[:5]
    # ... and still the whole answer: the trustchain, and the member's stream
    trustchain, member_streams = found[-1]
    assert trustchain is not None and [s.path for s in trustchain.streams] == ["m/"]
    assert [stream.path for stream in member_streams] == ["m/"]
