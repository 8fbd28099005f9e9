"""Storage: a SQLite file by default, PostgreSQL by URL, behind one small interface.

* :mod:`.database`: the driver seam (:class:`Database`, :class:`Connection`), SQLite and
  PostgreSQL implementations, :func:`connect`;
* :mod:`.changes`: the messages announcing committed changes of documents;
* :mod:`.migrations`: the ordered schema migrations applied at start;
* :mod:`.keyring`: the key-ring API's tables and queries (:class:`KeyRingStore`);
* :mod:`.cloudsync`: the Cloud Sync documents (:class:`DocumentStore`);
* :mod:`.relay`: QR-relay room seats shared by server processes (:class:`RelaySeatStore`).

A feature that needs tables adds a migration and its own store module built on
:class:`Database`, and a field on :class:`Storage`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .changes import ChangeFeed, DocumentVersion, TrustchainRemoved, parse_change
from .cloudsync import (
    Document,
    DocumentKey,
    DocumentStore,
    StreamClosed,
    TrustchainDeleted,
    WriteOutcome,
)
from .database import Connection, Database, DatabaseUrlError, connect
from .keyring import (
    AlreadyExists,
    KeyRingStore,
    NewBlocks,
    NoSuchTrustchain,
    StoreConflict,
    StreamInfo,
    StreamMoved,
    TrustchainInfo,
)
from .migrations import MIGRATIONS, Migration, apply_migrations
from .relay import RelaySeatStore


@dataclass(frozen=True)
class Storage:
    database: Database
    keyring: KeyRingStore
    documents: DocumentStore

    def announce_changes(self, feed: ChangeFeed) -> None:
        """Send the changes of documents to ``feed`` from now on (:mod:`.changes`)."""
        self.database.feed = feed

    async def close(self) -> None:
        await self.database.close()


async def open_storage(url: str) -> Storage:
    """Connect to ``url`` and bring its schema up to date."""
    database = await connect(url)
    try:
        await apply_migrations(database)
    except BaseException:
        await database.close()
        raise
    return Storage(database, KeyRingStore(database), DocumentStore(database))


__all__ = [
    "MIGRATIONS",
    "AlreadyExists",
    "ChangeFeed",
    "Connection",
    "Database",
    "DatabaseUrlError",
    "Document",
    "DocumentKey",
    "DocumentStore",
    "DocumentVersion",
    "KeyRingStore",
    "Migration",
    "NewBlocks",
    "NoSuchTrustchain",
    "RelaySeatStore",
    "Storage",
    "StoreConflict",
    "StreamClosed",
    "StreamInfo",
    "StreamMoved",
    "TrustchainDeleted",
    "TrustchainInfo",
    "TrustchainRemoved",
    "WriteOutcome",
    "apply_migrations",
    "connect",
    "open_storage",
    "parse_change",
]
