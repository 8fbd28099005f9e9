"""What the key-ring API stores: challenges, trustchains, their streams, blocks and members.

The store keeps bytes and a few facts derived from them by the resolver (a stream's height,
last block hash, whether it is closed, who its members are), so that permission checks are
plain queries. It checks nothing about the protocol: callers validate blocks first
(:mod:`ledgersync.server.keyring.validation`) and hand over the result.

Concurrency: appending to a stream is a compare-and-set on the stream's (height, last block
hash) inside one transaction. Two requests that extended the same state race on that
``UPDATE … WHERE``; exactly one changes a row, the other gets :class:`StreamMoved` and nothing
of it is written. Creating a stream that exists or a trustchain that exists (or existed) raises
:class:`AlreadyExists`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .changes import document_version, trustchain_removed
from .database import Connection, Database, Row

#: Expired challenges are purged this long after they expire (until then a late answer is
#: told "expired" rather than "unknown").
CHALLENGE_GRACE_SECONDS = 3600


class StoreConflict(Exception):
    """The write lost against the current state; nothing was written."""


class AlreadyExists(StoreConflict):
    pass


class StreamMoved(StoreConflict):
    """The stream is no longer at the state the new blocks extend."""


class NoSuchTrustchain(StoreConflict):
    pass


@dataclass(frozen=True)
class StreamInfo:
    path: str
    #: ``(application id, index)`` for ``m/0'/<appId>'/<index>'``; None for the root.
    application: tuple[int, int] | None
    height: int
    last_hash: bytes
    closed: bool


@dataclass(frozen=True)
class TrustchainInfo:
    id: str
    root_issuer: bytes
    streams: tuple[StreamInfo, ...]

    def stream(self, path: str) -> StreamInfo | None:
        for stream in self.streams:
            if stream.path == path:
                return stream
        return None

    def application_streams(self, application_id: int) -> list[StreamInfo]:
        """This application's streams, oldest index first."""
        found = [
            stream
            for stream in self.streams
            if stream.application is not None and stream.application[0] == application_id
        ]
        return sorted(found, key=lambda stream: stream.application or (0, 0))


@dataclass(frozen=True)
class NewBlocks:
    """Validated blocks to store, and the stream state once they are appended."""

    path: str
    application: tuple[int, int] | None
    #: Only the blocks to add, in order; the first one goes at ``height - len(blocks)``.
    blocks: tuple[bytes, ...]
    height: int
    last_hash: bytes
    closed: bool
    members: tuple[bytes, ...]


_STREAM_COLUMNS = "path, application_id, application_index, height, last_hash, closed"


def _stream(row: Row) -> StreamInfo:
    path, application_id, application_index, height, last_hash, closed = row
    application = None if application_id is None else (int(application_id), int(application_index))
    return StreamInfo(str(path), application, int(height), bytes(last_hash), bool(closed))


class KeyRingStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    # --- challenges ------------------------------------------------------------------------

    async def add_challenge(self, data: bytes, expires_at: int, now: int) -> None:
        async with self.database.transaction() as connection:
            await connection.execute(
                "DELETE FROM challenges WHERE expires_at < $1", now - CHALLENGE_GRACE_SECONDS
            )
            await connection.execute(
                "INSERT INTO challenges (data, expires_at) VALUES ($1, $2)", data, expires_at
            )

    async def take_challenge(self, data: bytes) -> int | None:
        """Remove a challenge and return its expiry; None if unknown or already taken."""
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                "DELETE FROM challenges WHERE data = $1 RETURNING expires_at", data
            )
        return None if row is None else int(row[0])

    # --- reading ---------------------------------------------------------------------------

    async def get_trustchain(self, trustchain_id: str) -> TrustchainInfo | None:
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                "SELECT root_issuer FROM trustchains WHERE id = $1", trustchain_id
            )
            if row is None:
                return None
            streams = await connection.fetch(
                f"SELECT {_STREAM_COLUMNS} FROM streams WHERE trustchain_id = $1 ORDER BY path",
                trustchain_id,
            )
        return TrustchainInfo(trustchain_id, bytes(row[0]), tuple(map(_stream, streams)))

    async def was_deleted(self, trustchain_id: str) -> bool:
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                "SELECT 1 FROM deleted_trustchains WHERE id = $1", trustchain_id
            )
        return row is not None

    async def read_blocks(self, trustchain_id: str, path: str) -> list[bytes]:
        async with self.database.transaction() as connection:
            rows = await connection.fetch(
                "SELECT data FROM blocks WHERE trustchain_id = $1 AND path = $2 ORDER BY height",
                trustchain_id,
                path,
            )
        return [bytes(row[0]) for row in rows]

    async def read_streams(self, trustchain_id: str, paths: Sequence[str]) -> dict[str, bytes]:
        """Each stream's blocks concatenated, for the given paths, in one snapshot."""
        streams: dict[str, bytes] = {}
        async with self.database.transaction() as connection:
            for path in paths:
                rows = await connection.fetch(
                    "SELECT data FROM blocks WHERE trustchain_id = $1 AND path = $2"
                    " ORDER BY height",
                    trustchain_id,
                    path,
                )
                streams[path] = b"".join(bytes(row[0]) for row in rows)
        return streams

    async def trustchains_of(self, root_issuer: bytes) -> list[str]:
        """The live trustchains whose root Seed was issued by this key."""
        async with self.database.transaction() as connection:
            rows = await connection.fetch(
                "SELECT id FROM trustchains WHERE root_issuer = $1 ORDER BY created_at, id",
                root_issuer,
            )
        return [str(row[0]) for row in rows]

    async def streams_with_member(self, trustchain_id: str, member: bytes) -> list[StreamInfo]:
        """The streams of a trustchain that count ``member`` among their members."""
        columns = ", ".join(f"s.{column.strip()}" for column in _STREAM_COLUMNS.split(","))
        async with self.database.transaction() as connection:
            rows = await connection.fetch(
                f"SELECT {columns} FROM stream_members m JOIN streams s"
                " ON s.trustchain_id = m.trustchain_id AND s.path = m.path"
                " WHERE m.trustchain_id = $1 AND m.member = $2 ORDER BY s.path",
                trustchain_id,
                member,
            )
        return [_stream(row) for row in rows]

    # --- writing ---------------------------------------------------------------------------

    async def create_trustchain(
        self, trustchain_id: str, root_issuer: bytes, root: NewBlocks, now: int
    ) -> None:
        async with self.database.transaction() as connection:
            if await connection.fetchrow(
                "SELECT 1 FROM deleted_trustchains WHERE id = $1", trustchain_id
            ):
                raise AlreadyExists(f"trustchain {trustchain_id} was deleted and cannot return")
            created = await connection.execute(
                "INSERT INTO trustchains (id, root_issuer, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                trustchain_id,
                root_issuer,
                now,
            )
            if not created:
                raise AlreadyExists(f"trustchain {trustchain_id} already exists")
            await _insert_stream(connection, trustchain_id, root)

    async def add_stream(self, trustchain_id: str, stream: NewBlocks) -> None:
        async with self.database.transaction() as connection:
            # A no-op update rather than a SELECT: it also locks the row (PostgreSQL), so that
            # a concurrent deletion waits for this transaction instead of breaking it.
            if not await connection.execute(
                "UPDATE trustchains SET created_at = created_at WHERE id = $1", trustchain_id
            ):
                raise NoSuchTrustchain(trustchain_id)
            await _insert_stream(connection, trustchain_id, stream)

    async def append(
        self, trustchain_id: str, expected: StreamInfo, update: NewBlocks
    ) -> list[str]:
        """Append ``update.blocks`` if the stream is still exactly at ``expected``.

        If this closes the stream, its Cloud Sync documents (all slugs) are deleted in the
        same transaction: a closed stream's path never holds a document
        (:mod:`~ledgersync.server.storage.cloudsync`), each announced as version 0
        (:mod:`.changes`). Returns the slugs of those deleted."""
        async with self.database.transaction() as connection:
            moved = await connection.execute(
                "UPDATE streams SET height = $1, last_hash = $2, closed = $3"
                " WHERE trustchain_id = $4 AND path = $5 AND height = $6 AND last_hash = $7",
                update.height,
                update.last_hash,
                update.closed,
                trustchain_id,
                update.path,
                expected.height,
                expected.last_hash,
            )
            if moved != 1:
                raise StreamMoved(update.path)
            await _insert_blocks(connection, trustchain_id, update)
            if not update.closed or expected.closed:
                return []
            rows = await connection.fetch(
                "DELETE FROM documents WHERE trustchain_id = $1 AND path = $2 RETURNING slug",
                trustchain_id,
                update.path,
            )
            slugs = sorted(str(row[0]) for row in rows)
            for slug in slugs:  # deleted with their closed stream: version 0, as a DELETE
                await connection.notice(document_version(slug, trustchain_id, update.path, 0))
        return slugs

    async def delete_trustchain(self, trustchain_id: str, now: int) -> bool:
        """Delete a trustchain and everything in it (announced, :mod:`.changes`); its id can
        never be created again."""
        async with self.database.transaction() as connection:
            deleted = await connection.execute(
                "DELETE FROM trustchains WHERE id = $1", trustchain_id
            )
            if deleted:
                # The trustchain's Cloud Sync documents go with it (storage/cloudsync.py).
                await connection.execute(
                    "DELETE FROM documents WHERE trustchain_id = $1", trustchain_id
                )
                await connection.execute(
                    "INSERT INTO deleted_trustchains (id, deleted_at) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    trustchain_id,
                    now,
                )
                await connection.notice(trustchain_removed(trustchain_id))
        return deleted > 0


async def _insert_stream(connection: Connection, trustchain_id: str, stream: NewBlocks) -> None:
    application_id, application_index = stream.application or (None, None)
    inserted = await connection.execute(
        "INSERT INTO streams (trustchain_id, path, application_id, application_index, height,"
        " last_hash, closed) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        trustchain_id,
        stream.path,
        application_id,
        application_index,
        stream.height,
        stream.last_hash,
        stream.closed,
    )
    if not inserted:
        raise AlreadyExists(f"stream {stream.path} already exists")
    await _insert_blocks(connection, trustchain_id, stream)


async def _insert_blocks(connection: Connection, trustchain_id: str, update: NewBlocks) -> None:
    first = update.height - len(update.blocks)
    for offset, data in enumerate(update.blocks):
        await connection.execute(
            "INSERT INTO blocks (trustchain_id, path, height, data) VALUES ($1, $2, $3, $4)",
            trustchain_id,
            update.path,
            first + offset,
            data,
        )
    for member in update.members:
        await connection.execute(
            "INSERT INTO stream_members (trustchain_id, path, member) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            trustchain_id,
            update.path,
            member,
        )
