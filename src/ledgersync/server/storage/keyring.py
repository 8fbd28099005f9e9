"""What the key-ring API stores: used challenges, trustchains, their streams, blocks and members.

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

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .changes import document_version, trustchain_removed
from .database import Database, Plan, Query, Row, change, execute, fetchrow, lock_order

#: A used challenge is remembered until this long after it expires: a replay needs the
#: challenge to be unexpired, so only a clock set back by more than this could take a
#: forgotten one for unused.
CHALLENGE_GRACE_SECONDS = 3600
#: Used challenges past their grace are swept by the first one used at least this long after
#: the previous sweep (per process; ``used_challenges.expires_at`` is indexed).
CHALLENGE_SWEEP_INTERVAL_SECONDS = 1


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
    #: The members these blocks add (all of a new stream's), to record beside the stored ones.
    members: tuple[bytes, ...]


_STREAM_COLUMNS = "path, application_id, application_index, height, last_hash, closed"
#: The same columns of a table aliased ``s``.
_S_STREAM_COLUMNS = ", ".join(f"s.{column.strip()}" for column in _STREAM_COLUMNS.split(","))

V = TypeVar("V")

#: Bytes of committed blocks a process keeps in each :class:`StreamStateCache`.
STREAM_CACHE_BYTES = 32 << 20


class StreamStateCache(Generic[V]):
    """What is derived from a stream's committed blocks, by (trustchain id, path), valid only
    for the exact state (height, last block hash) it was derived at.

    Exact without any invalidation message, even with other processes writing: blocks below
    a stream's height never change, and the last block's hash names them all (each block
    holds, under its signature, its parent's hash). An append or a close moves the stream
    to another state, so the entry stops matching (it is replaced by the next :meth:`put`);
    a deleted trustchain is not found before its streams are looked up here (its id never
    returns), and its entries are dropped (:meth:`forget`). Least recently used entries go
    first once their sizes add up to more than ``max_bytes``."""

    def __init__(self, max_bytes: int = STREAM_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[int, bytes, V, int]] = OrderedDict()
        self._bytes = 0

    def get(self, trustchain_id: str, stream: StreamInfo) -> V | None:
        key = (trustchain_id, stream.path)
        entry = self._entries.get(key)
        if entry is None or entry[0] != stream.height or entry[1] != stream.last_hash:
            return None
        self._entries.move_to_end(key)
        return entry[2]

    def put(self, trustchain_id: str, stream: StreamInfo, value: V, size: int) -> None:
        if size > self.max_bytes:
            return
        key = (trustchain_id, stream.path)
        self._drop(key)
        self._entries[key] = (stream.height, stream.last_hash, value, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def forget(self, trustchain_id: str) -> None:
        """Drop a deleted trustchain's entries (memory only: they could never match again)."""
        for key in [key for key in self._entries if key[0] == trustchain_id]:
            self._drop(key)

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[3]


def _stream(row: Row) -> StreamInfo:
    path, application_id, application_index, height, last_hash, closed = row
    application = None if application_id is None else (int(application_id), int(application_index))
    return StreamInfo(str(path), application, int(height), bytes(last_hash), bool(closed))


class KeyRingStore:
    """Reads run on :meth:`Database.read_snapshot` (committed data, one snapshot per call,
    never queued behind writers); hot writes (challenges, appends) are :data:`Plan`\\ s, group
    committed on SQLite (:meth:`Database.run_plan`); rare ones are plain transactions."""

    def __init__(self, database: Database) -> None:
        self.database = database
        #: Streams' committed blocks, concatenated, by exact state (:meth:`read_streams`).
        self.stream_bytes: StreamStateCache[bytes] = StreamStateCache()
        #: The clock second of the last sweep of used challenges (None: none yet).
        self._last_sweep_at: int | None = None

    # --- challenges ------------------------------------------------------------------------

    async def use_challenge(self, data: bytes, expires_at: int, now: int) -> bool:
        """Record that the challenge ``data`` (unexpired, valid until ``expires_at``) was
        answered: True the first time, False if it already was (and nothing changes).

        Challenges themselves are not stored: the server's signature and the expiry inside
        vouch for them. Single use holds under concurrency and across processes: the primary
        key lets one ``INSERT`` of ``data`` through (two in one group commit run one after the
        other, each in its savepoint)."""
        # Sweeping on every use made each a range delete; at most once a second keeps the
        # table as small while costing one indexed delete a second.
        last = self._last_sweep_at
        sweep = last is None or not last <= now < last + CHALLENGE_SWEEP_INTERVAL_SECONDS
        if sweep:  # (a clock set back also sweeps at once)
            self._last_sweep_at = now

        def plan() -> Plan[bool]:
            if sweep:
                yield execute(
                    "DELETE FROM used_challenges WHERE expires_at < $1",
                    now - CHALLENGE_GRACE_SECONDS,
                )
            inserted = yield execute(
                "INSERT INTO used_challenges (data, expires_at) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                data,
                expires_at,
            )
            return bool(inserted)

        # Its own lock order: two batches inserting the same challenges (replays) take
        # their row locks in one order, so neither waits for the other's.
        return await self.database.run_plan(plan, lock_order("used challenge", data.hex()))

    # --- reading ---------------------------------------------------------------------------

    async def get_trustchain(self, trustchain_id: str) -> TrustchainInfo | None:
        trustchain, _ = await self.trustchain_and_member_streams(trustchain_id, None)
        return trustchain

    async def trustchain_and_member_streams(
        self, trustchain_id: str, member: bytes | None
    ) -> tuple[TrustchainInfo | None, list[StreamInfo]]:
        """The trustchain (None if there is none) and, if ``member`` is given, the streams
        counting it among their members (:meth:`streams_with_member`): one statement, so one
        snapshot and one round trip (every authorized Key Ring request starts with it)."""
        args: tuple[object, ...]
        if member is None:
            is_member, args = "FALSE", (trustchain_id,)
        else:
            is_member = (
                "EXISTS (SELECT 1 FROM stream_members m"
                " WHERE m.trustchain_id = t.id AND m.path = s.path AND m.member = $2)"
            )
            args = (trustchain_id, member)
        # One row per stream (a trustchain always has its root stream; a row of NULLs if its
        # streams were never stored).
        [rows] = await self.database.read_snapshot(
            [
                (
                    f"SELECT t.root_issuer, {is_member}, {_S_STREAM_COLUMNS} FROM trustchains t"
                    " LEFT JOIN streams s ON s.trustchain_id = t.id WHERE t.id = $1"
                    " ORDER BY s.path",
                    args,
                )
            ]
        )
        if not rows:
            return None, []
        streams = [(bool(row[1]), _stream(row[2:])) for row in rows if row[2] is not None]
        trustchain = TrustchainInfo(
            trustchain_id, bytes(rows[0][0]), tuple(stream for _, stream in streams)
        )
        return trustchain, [stream for listed, stream in streams if listed]

    async def was_deleted(self, trustchain_id: str) -> bool:
        [rows] = await self.database.read_snapshot(
            [("SELECT 1 FROM deleted_trustchains WHERE id = $1", (trustchain_id,))]
        )
        return bool(rows)

    async def read_blocks(self, trustchain_id: str, path: str) -> list[bytes]:
        [rows] = await self.database.read_snapshot([_blocks_query(trustchain_id, path)])
        return [bytes(row[0]) for row in rows]

    async def read_streams(
        self, trustchain_id: str, streams: Sequence[StreamInfo]
    ) -> dict[str, bytes]:
        """Each stream's blocks below its given height, concatenated, by path: exactly the
        state each :class:`StreamInfo` describes (cached, :class:`StreamStateCache`), those
        not cached read in one snapshot. A stream with fewer blocks stored than its height
        (its trustchain deleted meanwhile) gets what is left, not cached."""
        found: dict[str, bytes] = {}
        missing: list[StreamInfo] = []
        for stream in streams:
            cached = self.stream_bytes.get(trustchain_id, stream)
            if cached is None:
                missing.append(stream)
            else:
                found[stream.path] = cached
        if missing:
            results = await self.database.read_snapshot(
                [_blocks_query(trustchain_id, stream.path, stream.height) for stream in missing]
            )
            for stream, rows in zip(missing, results, strict=True):
                data = b"".join(bytes(row[0]) for row in rows)
                if len(rows) == stream.height:
                    self.stream_bytes.put(trustchain_id, stream, data, len(data))
                found[stream.path] = data
        return {stream.path: found[stream.path] for stream in streams}

    async def trustchains_of(self, root_issuer: bytes) -> list[str]:
        """The live trustchains whose root Seed was issued by this key."""
        [rows] = await self.database.read_snapshot(
            [
                (
                    "SELECT id FROM trustchains WHERE root_issuer = $1 ORDER BY created_at, id",
                    (root_issuer,),
                )
            ]
        )
        return [str(row[0]) for row in rows]

    async def streams_with_member(self, trustchain_id: str, member: bytes) -> list[StreamInfo]:
        """The streams of a trustchain that count ``member`` among their members."""
        [rows] = await self.database.read_snapshot([_member_streams_query(trustchain_id, member)])
        return [_stream(row) for row in rows]

    # --- writing ---------------------------------------------------------------------------

    async def create_trustchain(
        self, trustchain_id: str, root_issuer: bytes, root: NewBlocks, now: int
    ) -> None:
        def plan() -> Plan[None]:
            if (yield fetchrow("SELECT 1 FROM deleted_trustchains WHERE id = $1", trustchain_id)):
                raise AlreadyExists(f"trustchain {trustchain_id} was deleted and cannot return")
            created = yield execute(
                "INSERT INTO trustchains (id, root_issuer, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                trustchain_id,
                root_issuer,
                now,
            )
            if not created:
                raise AlreadyExists(f"trustchain {trustchain_id} already exists")
            yield from _stream_plan(trustchain_id, root)

        await self.database.run_plan(plan, lock_order(trustchain_id))

    async def add_stream(self, trustchain_id: str, stream: NewBlocks) -> None:
        def plan() -> Plan[None]:
            # A no-op update rather than a SELECT: it also locks the row (PostgreSQL), so that
            # a concurrent deletion waits for this transaction instead of breaking it.
            if not (
                yield execute(
                    "UPDATE trustchains SET created_at = created_at WHERE id = $1", trustchain_id
                )
            ):
                raise NoSuchTrustchain(trustchain_id)
            yield from _stream_plan(trustchain_id, stream)

        await self.database.run_plan(plan, lock_order(trustchain_id))

    async def append(
        self, trustchain_id: str, expected: StreamInfo, update: NewBlocks
    ) -> list[str]:
        """Append ``update.blocks`` if the stream is still exactly at ``expected``.

        If this closes the stream, its Cloud Sync documents (all slugs) are deleted in the
        same transaction: a closed stream's path never holds a document
        (:mod:`~ledgersync.server.storage.cloudsync`), each announced as version 0
        (:mod:`.changes`). Returns the slugs of those deleted."""

        def plan() -> Plan[list[str]]:
            moved = yield execute(
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
            yield from _blocks_plan(trustchain_id, update)
            if not update.closed or expected.closed:
                return []
            return (yield from _delete_documents_plan(trustchain_id, update.path))

        return await self.database.run_plan(plan, lock_order(trustchain_id, update.path))

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
        if deleted:
            self.stream_bytes.forget(trustchain_id)
        return deleted > 0


def _blocks_query(trustchain_id: str, path: str, below: int | None = None) -> Query:
    """A stream's blocks in order: all of them, or those below height ``below``."""
    if below is None:
        return (
            "SELECT data FROM blocks WHERE trustchain_id = $1 AND path = $2 ORDER BY height",
            (trustchain_id, path),
        )
    return (
        "SELECT data FROM blocks WHERE trustchain_id = $1 AND path = $2 AND height < $3"
        " ORDER BY height",
        (trustchain_id, path, below),
    )


def _member_streams_query(trustchain_id: str, member: bytes) -> Query:
    return (
        f"SELECT {_S_STREAM_COLUMNS} FROM stream_members m JOIN streams s"
        " ON s.trustchain_id = m.trustchain_id AND s.path = m.path"
        " WHERE m.trustchain_id = $1 AND m.member = $2 ORDER BY s.path",
        (trustchain_id, member),
    )


def _stream_plan(trustchain_id: str, stream: NewBlocks) -> Plan[None]:
    application_id, application_index = stream.application or (None, None)
    inserted = yield execute(
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
    yield from _blocks_plan(trustchain_id, stream)


def _delete_documents_plan(trustchain_id: str, path: str) -> Plan[list[str]]:
    """Delete the Cloud Sync documents at ``path``, each announced as version 0 (as a
    DELETE); their slugs, in order. One slug at a time: a plan's statement returns one row."""
    slugs: list[str] = []
    while True:
        row = yield fetchrow(
            "SELECT slug FROM documents WHERE trustchain_id = $1 AND path = $2 AND slug > $3"
            " ORDER BY slug LIMIT 1",
            trustchain_id,
            path,
            slugs[-1] if slugs else "",
        )
        if row is None:
            return slugs
        slug = str(row[0])
        yield change(
            document_version(slug, trustchain_id, path, 0),
            "DELETE FROM documents WHERE slug = $1 AND trustchain_id = $2 AND path = $3",
            slug,
            trustchain_id,
            path,
        )
        slugs.append(slug)


def _blocks_plan(trustchain_id: str, update: NewBlocks) -> Plan[None]:
    first = update.height - len(update.blocks)
    for offset, data in enumerate(update.blocks):
        yield execute(
            "INSERT INTO blocks (trustchain_id, path, height, data) VALUES ($1, $2, $3, $4)",
            trustchain_id,
            update.path,
            first + offset,
            data,
        )
    for member in update.members:
        yield execute(
            "INSERT INTO stream_members (trustchain_id, path, member) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            trustchain_id,
            update.path,
            member,
        )
