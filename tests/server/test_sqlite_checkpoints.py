"""SQLite's WAL checkpoints run in the background (``storage/checkpoints.py``), not inside
the commits: shortly after writes, the database file itself holds them."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from ledgersync.server.storage import Document, DocumentKey, open_storage
from ledgersync.server.storage.checkpoints import VALVE_PAGES
from ledgersync.server.storage.database import SQLiteDatabase

TRUSTCHAIN_ID = "00" + "33" * 32
WRITES = 200
#: A bound on waits that must not happen: reaching it fails the test instead of hanging it.
NO_WAIT_SECONDS = 10


def test_writes_reach_the_database_file_shortly_after_their_commits(tmp_path: Path) -> None:
    path = tmp_path / "ledgersync.sqlite"

    async def scenario() -> tuple[int, int]:
        storage = await open_storage(f"sqlite:///{path}")
        try:
            database = storage.database
            assert isinstance(database, SQLiteDatabase) and database.checkpointer is not None
            # A few hundred pages, well under SQLite's own threshold (1,000) and the valve.
            writes = (
                storage.documents.write(
                    DocumentKey("app", TRUSTCHAIN_ID, f"m/{index}"),
                    Document(1, "eA==" * 200, 0, None),
                )
                for index in range(WRITES)
            )
            outcomes = await asyncio.gather(*writes)
            assert all(outcome.accepted for outcome in outcomes)
            await asyncio.wait_for(database.checkpointer.idle(), NO_WAIT_SECONDS)
            # Its connection is this process's own: not taken for another process's (which
            # would stop the Cloud Sync polls being answered from memory).
            assert database.sole_process()
            [[autocheckpoint]] = await database.run(
                lambda connection: connection.execute("PRAGMA wal_autocheckpoint").fetchall()
            )
            # The database file alone (its WAL left behind) holds every write.
            alone = tmp_path / "copy.sqlite"
            shutil.copyfile(path, alone)
            with sqlite3.connect(alone) as copy:
                tables = copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if ("documents",) not in tables.fetchall():  # its creation still in the WAL
                    return 0, int(autocheckpoint)
                [[count]] = copy.execute("SELECT count(*) FROM documents").fetchall()
            return int(count), int(autocheckpoint)
        finally:
            await storage.close()

    count, autocheckpoint = asyncio.run(scenario())
    assert count == WRITES
    assert autocheckpoint == VALVE_PAGES  # commits checkpoint only as a valve
