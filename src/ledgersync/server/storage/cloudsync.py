"""What the Cloud Sync API stores: one document per (slug, trustchain id, path).

A document is ``{version, payload, updated_at (ms), info}``; the payload is the client's
opaque string (base64 of an encrypted blob), stored as given.

Concurrency: :meth:`DocumentStore.write` is a compare-and-set inside one transaction (a
:data:`~.database.Plan`: on SQLite, concurrent writes are committed together, each in its
savepoint). It
first tries ``UPDATE … WHERE version = <new version> - 1``; on an empty key it tries an
``INSERT … ON CONFLICT DO NOTHING``. Two writers racing for the same next version both reach
the same row: PostgreSQL makes the second ``UPDATE`` wait for the first to commit and then
re-checks its ``WHERE`` (the version moved, so nothing changes); SQLite serialises write
transactions (``BEGIN IMMEDIATE``). Exactly one of them is accepted; the other gets the
current document back and nothing of it is written.

Documents of deleted trustchains are removed with the trustchain
(:meth:`~ledgersync.server.storage.keyring.KeyRingStore.delete_trustchain`), and a write
can not create a document for a trustchain id listed in ``deleted_trustchains``.

Closed streams: a closed stream's path (a key rotation retired it) never holds a document,
whatever tokens still name it. Closing the stream deletes its documents in the same
transaction (:meth:`~ledgersync.server.storage.keyring.KeyRingStore.append`; migration 3 did
it once for databases that had some). So reads there find nothing, an ``UPDATE`` there
matches nothing, and only the ``INSERT`` path (a first write) must look at the stream: it
raises :class:`StreamClosed`. On PostgreSQL it reads the stream ``FOR SHARE``, so that a close
committing meanwhile waits for the insert (and then deletes the new document) or is seen by
it; SQLite runs one write transaction at a time. Deleting at a closed path is refused
(:class:`StreamClosed`) except for a member of an open stream of the same application:
Ledger Live's rotation deletes the old document with a pre-rotation token *after* closing the
stream (there is nothing left to delete by then).
"""

from __future__ import annotations

from dataclasses import dataclass

from .changes import document_version
from .database import Database, Plan, Row, change, fetchrow, lock_order


@dataclass(frozen=True)
class DocumentKey:
    slug: str
    trustchain_id: str
    path: str


@dataclass(frozen=True)
class Document:
    version: int
    payload: str
    #: Time of the last accepted write, in milliseconds since the epoch.
    updated_at: int
    #: The writer's ``X-Ledger-Client-Version``, if it sent one.
    info: str | None


@dataclass(frozen=True)
class WriteOutcome:
    """``accepted``: the write is committed. Otherwise ``current`` is the stored document."""

    accepted: bool
    current: Document | None


class TrustchainDeleted(Exception):
    """The write targets a trustchain that was deleted; nothing was written."""


class StreamClosed(Exception):
    """The document's (trustchain id, path) is a closed stream; nothing was written."""


_COLUMNS = "version, payload, updated_at, info"


def _document(row: Row) -> Document:
    return Document(version=int(row[0]), payload=row[1], updated_at=int(row[2]), info=row[3])


_SELECT = f"SELECT {_COLUMNS} FROM documents WHERE slug = $1 AND trustchain_id = $2 AND path = $3"
_STREAM = "SELECT closed, application_id FROM streams WHERE trustchain_id = $1 AND path = $2"


class DocumentStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        # Locks the stream's row against a concurrent close (see the module docstring).
        self._stream_for_insert = _STREAM + (
            " FOR SHARE" if database.dialect == "postgresql" else ""
        )

    async def get(self, key: DocumentKey) -> Document | None:
        row = await self.database.read_row(_SELECT, key.slug, key.trustchain_id, key.path)
        return None if row is None else _document(row)

    async def closed(self, trustchain_id: str, path: str) -> bool:
        """Whether ``path`` is a closed stream of the trustchain."""
        row = await self.database.read_row(_STREAM, trustchain_id, path)
        return row is not None and bool(row[0])

    async def write(self, key: DocumentKey, document: Document) -> WriteOutcome:
        """Store ``document`` if its version follows the stored one (any version >= 1 on an
        empty key); otherwise return the stored document. Committed when this returns, and
        announced (:mod:`.changes`). :class:`StreamClosed` (nothing written) if the key's
        stream is closed."""
        return await self.database.run_plan(lambda: self._write(key, document), _lock_order(key))

    def _write(self, key: DocumentKey, document: Document) -> Plan[WriteOutcome]:
        args = (
            key.slug,
            key.trustchain_id,
            key.path,
            document.version,
            document.payload,
            document.updated_at,
            document.info,
        )
        message = document_version(key.slug, key.trustchain_id, key.path, document.version)
        for _ in range(3):
            updated = yield change(
                message,
                "UPDATE documents SET version = $4, payload = $5, updated_at = $6, info = $7"
                " WHERE slug = $1 AND trustchain_id = $2 AND path = $3"
                " AND version = CAST($4 AS BIGINT) - 1",  # the cast: PostgreSQL would infer
                # a 4-byte integer from "$4 - 1", and versions go up to 2^53 - 1
                *args,
            )
            if updated:
                return WriteOutcome(True, None)
            stream = yield fetchrow(self._stream_for_insert, key.trustchain_id, key.path)
            if stream is not None and stream[0]:
                raise StreamClosed(key.path)
            inserted = yield change(
                message,
                f"INSERT INTO documents (slug, trustchain_id, path, {_COLUMNS})"
                " SELECT $1, $2, $3, $4, $5, $6, $7"
                " WHERE NOT EXISTS (SELECT 1 FROM deleted_trustchains WHERE id = $2)"
                " ON CONFLICT DO NOTHING",
                *args,
            )
            if inserted:
                return WriteOutcome(True, None)
            current = yield fetchrow(_SELECT, key.slug, key.trustchain_id, key.path)
            if current is not None:
                return WriteOutcome(False, _document(current))
            deleted = yield fetchrow(
                "SELECT 1 FROM deleted_trustchains WHERE id = $1", key.trustchain_id
            )
            if deleted is not None:
                raise TrustchainDeleted(key.trustchain_id)
            # The document was deleted by another transaction between our statements
            # (PostgreSQL, read committed): look again.
        return WriteOutcome(False, None)

    async def delete(self, key: DocumentKey, requester: bytes) -> bool:
        """Delete the document (True if there was one), announced (:mod:`.changes`). If its
        stream is closed, only a ``requester`` that is a member of an open stream of the same
        application may (else :class:`StreamClosed`, nothing deleted)."""
        return await self.database.run_plan(lambda: self._delete(key, requester), _lock_order(key))

    def _delete(self, key: DocumentKey, requester: bytes) -> Plan[bool]:
        stream = yield fetchrow(_STREAM, key.trustchain_id, key.path)
        if stream is not None and stream[0]:
            member = yield fetchrow(
                "SELECT 1 FROM stream_members m JOIN streams s"
                " ON s.trustchain_id = m.trustchain_id AND s.path = m.path"
                " WHERE m.trustchain_id = $1 AND m.member = $2 AND s.application_id = $3"
                " AND NOT s.closed LIMIT 1",
                key.trustchain_id,
                requester,
                stream[1],
            )
            if member is None:
                raise StreamClosed(key.path)
        deleted = yield change(
            document_version(key.slug, key.trustchain_id, key.path, 0),
            "DELETE FROM documents WHERE slug = $1 AND trustchain_id = $2 AND path = $3",
            key.slug,
            key.trustchain_id,
            key.path,
        )
        return bool(deleted > 0)


def _lock_order(key: DocumentKey) -> str:
    return lock_order(key.trustchain_id, key.path, key.slug)
