"""The database seam: one small async interface, two drivers (SQLite and PostgreSQL).

Every query in the server is written once, in PostgreSQL's ``$1, $2`` placeholder style, and
runs unchanged on both drivers (the SQLite driver rewrites ``$n`` into SQLite's ``?n``). Only
DDL differs, through the ``{blob}`` type name of :data:`Database.types`.

All work happens inside :meth:`Database.transaction`: it commits when the block ends and rolls
back on any exception, so a handler that got through its ``async with`` without an error knows
its writes are durable before it answers.

* SQLite: one connection owned by one worker thread, WAL journal, ``synchronous=FULL``,
  foreign keys on; an asyncio lock gives each transaction the connection to itself, and write
  transactions start with ``BEGIN IMMEDIATE`` so that several processes sharing the file
  serialise instead of deadlocking. The folder it creates is ``0700`` and the database file
  ``0600``; SQLite gives the ``-wal`` and ``-shm`` files the database file's mode.
* PostgreSQL: an asyncpg pool; each transaction holds one pooled connection.

Hot writes (Cloud Sync documents, Key Ring used challenges and blocks) are written as a
:data:`Plan`: a generator that yields its statements (:func:`execute`, :func:`fetchrow`,
:func:`change`) and receives their results, so that one piece of code runs on both
drivers and SQLite can *group commit* (:meth:`Database.run_plan`): plans submitted while a
commit is in progress wait for it, then all run in one transaction, each inside its own
savepoint (a plan that raises is rolled back alone, the others commit), with one ``COMMIT``
and one fsync for them all. Each caller is answered once that ``COMMIT`` returned: durable
as before, a few fsyncs instead of one per write.
PostgreSQL groups them the same way, in one transaction but without savepoints (each
costs two more round trips there): if a plan raises, the batch is rolled back before its
``COMMIT`` and each of its plans runs again alone, in a transaction of its own.

Changes of documents are announced through the database's :attr:`Database.feed`
(:mod:`.changes`): a :func:`change` statement carries its message, sent inside the
transaction on PostgreSQL (``pg_notify`` in the same statement: no extra round trip) and
handed to ``feed.committed`` after the commit, in commit order, by this layer.

SQLite and other processes: several server processes may share one SQLite file (``BEGIN
IMMEDIATE`` serialises them), but then no process sees the others' changes as they happen.
:meth:`SQLiteDatabase.sole_process` tells whether another process has had the file open
since this one opened it (see :class:`_OtherProcesses`): what allows caching committed state
in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import functools
import logging
import os
import re
import select
import sqlite3
import struct
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit

from .changes import ChangeFeed, NoFeed
from .checkpoints import VALVE_PAGES, Checkpointer

log = logging.getLogger("ledgersync.storage")

Row = Sequence[Any]
T = TypeVar("T")

#: One statement of a :data:`Plan`: ``(kind, sql, args, message)``, kind ``"execute"``
#: (the result is the number of rows changed), ``"fetchrow"`` (a row or None) or ``"change"``
#: (``execute`` that announces ``message`` if it changed a row).
Step = tuple[str, str, tuple[Any, ...], str | None]
#: A write transaction as a generator of :data:`Step`\ s, receiving each one's result.
Plan = Generator[Step, Any, T]
#: A read-only statement and its arguments (:meth:`Database.read_snapshot`).
Query = tuple[str, tuple[Any, ...]]


def execute(sql: str, *args: Any) -> Step:
    return ("execute", sql, args, None)


def fetchrow(sql: str, *args: Any) -> Step:
    return ("fetchrow", sql, args, None)


def change(message: str, sql: str, *args: Any) -> Step:
    """A statement changing one document (``UPDATE``/``INSERT``/``DELETE``, no ``RETURNING``),
    announcing ``message`` (:mod:`.changes`) if it changes a row."""
    return ("change", sql, args, message)


def _notifying(sql: str, arg_count: int) -> str:
    """``sql`` sending a notification (the two arguments after its own) per changed row, in
    the same statement (PostgreSQL)."""
    first = arg_count + 1
    return (
        f"WITH changed AS ({sql} RETURNING 1) SELECT pg_notify(${first}, ${first + 1}) FROM changed"
    )


class Connection(Protocol):
    """A connection inside a transaction."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def notice(self, message: str) -> None:
        """Announce the change ``message`` describes with this transaction (:mod:`.changes`)."""
        ...


class Database(Protocol):
    #: ``"sqlite"`` or ``"postgresql"``.
    dialect: ClassVar[str]
    #: DDL type names for this dialect, used as ``{blob}`` in migrations.
    types: ClassVar[dict[str, str]]

    #: Where the changes of documents are announced (:mod:`.changes`).
    feed: ChangeFeed

    def transaction(self) -> AbstractAsyncContextManager[Connection]: ...

    async def run_plan(self, plan: Callable[[], Plan[T]], lock_order: str = "") -> T:
        """Run the write transaction ``plan()`` makes; its result once committed (or its
        exception, nothing of it written). Concurrent plans are committed together (group
        commit), in the order of their ``lock_order``: the key of the rows the plan locks
        (see :class:`_GroupCommit`)."""
        ...

    def sole_process(self) -> bool:
        """Whether no other process may change this database behind this one's back (SQLite:
        checked now; PostgreSQL: False, other processes announce through the broker)."""
        ...

    async def read_row(self, sql: str, *args: Any) -> Row | None:
        """One read-only statement outside any transaction block: it sees committed data only
        and waits for no writer (SQLite: a separate reader connection, WAL; PostgreSQL: one
        pooled round trip). For hot single-row reads."""
        ...

    async def read_snapshot(self, queries: Sequence[Query]) -> list[list[Row]]:
        """Each read-only ``(sql, args)`` query's rows, all from one consistent snapshot of
        committed data, outside any write transaction: it waits for no writer (SQLite: the
        reader connection, WAL, one thread hop for them all; PostgreSQL: one pooled
        connection, a read-only repeatable-read transaction if there are several)."""
        ...

    async def close(self) -> None: ...


class DatabaseUrlError(ValueError):
    pass


SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


#: The accepted forms, for error messages.
DATABASE_URL_FORMS = (
    "sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite or "
    "postgresql://user:password@host:port/database"
)


def check_database_url(url: str) -> None:
    """Raise :class:`DatabaseUrlError` unless ``url`` names a database this server can open."""
    if url.startswith("sqlite:"):
        if not url.startswith(SQLITE_PREFIX):
            raise DatabaseUrlError(
                f"database URL {url!r}: an SQLite URL has three slashes before a relative "
                "path and four before an absolute one (sqlite:///relative/path.sqlite, "
                "sqlite:////absolute/path.sqlite)"
            )
        if not url.removeprefix(SQLITE_PREFIX).strip("/"):
            raise DatabaseUrlError(
                f"database URL {url!r} names no file after sqlite:/// "
                "(sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite)"
            )
        return
    if url.startswith(POSTGRES_PREFIXES):
        host_and_port = urlsplit(url).netloc.rpartition("@")[2]  # never echo the password
        try:
            urlsplit(url).port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise DatabaseUrlError(
                f"database URL: the port in {host_and_port!r} is not a number from 1 to 65535 "
                "(postgresql://user:password@host:port/database)"
            ) from None
        return
    raise DatabaseUrlError(
        "database URL must start with sqlite:/// or postgresql:// "
        f"(got {url.split(':', 1)[0]!r}; accepted: {DATABASE_URL_FORMS})"
    )


async def connect(url: str) -> Database:
    """Open the database named by ``url`` (see :class:`~ledgersync.server.config.ServerConfig`)."""
    check_database_url(url)
    if url.startswith(SQLITE_PREFIX):
        return await SQLiteDatabase.open(Path(url.removeprefix(SQLITE_PREFIX)))
    return await PostgresDatabase.open(url)


# --- SQLite ------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$(\d+)")


@functools.lru_cache(maxsize=512)
def _sqlite_sql(sql: str) -> str:
    """PostgreSQL's ``$n`` placeholders as SQLite's ``?n`` (the statements are a few hundred
    constant texts: translated once each)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def _sqlite_args(args: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(int(arg) if isinstance(arg, bool) else arg for arg in args)


class _SQLiteConnection:
    def __init__(self, database: SQLiteDatabase) -> None:
        self._database = database
        #: Messages to hand to the feed once committed.
        self.notices: list[str] = []

    async def notice(self, message: str) -> None:
        self.notices.append(message)

    async def execute(self, sql: str, *args: Any) -> int:
        def run(connection: sqlite3.Connection) -> int:
            return connection.execute(_sqlite_sql(sql), _sqlite_args(args)).rowcount

        return await self._database.run(run)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        def run(connection: sqlite3.Connection) -> list[Row]:
            return connection.execute(_sqlite_sql(sql), _sqlite_args(args)).fetchall()

        return await self._database.run(run)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


def _run_plan_sync(connection: sqlite3.Connection, plan: Plan[T], notices: list[str]) -> T:
    """Drive ``plan`` on ``connection`` (in the writer thread), collecting its notices."""
    result: Any = None
    try:
        while True:
            kind, sql, args, message = plan.send(result)
            cursor = connection.execute(_sqlite_sql(sql), _sqlite_args(args))
            if kind == "fetchrow":
                result = cursor.fetchone()
            else:
                result = cursor.rowcount
                if kind == "change" and result and message is not None:
                    notices.append(message)
    except StopIteration as done:
        value: T = done.value
        return value


def lock_order(*names: str) -> str:
    """The ``lock_order`` of a plan writing the rows named by ``names`` (a trustchain id, then
    a stream path, then a document slug): a row sorts before the rows under it."""
    return "\x00".join(names)


class _Batch:
    """Plans waiting for the next group commit, and their callers' futures."""

    __slots__ = ("futures", "lock_orders", "plans")

    def __init__(self) -> None:
        self.plans: list[Callable[[], Plan[Any]]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.lock_orders: list[str] = []

    def in_lock_order(self) -> list[int]:
        """The plans' indexes sorted by lock order (stable: one key's plans keep their
        arrival order, which their versions follow)."""
        return sorted(range(len(self.plans)), key=self.lock_orders.__getitem__)


#: Per plan of a batch: (succeeded, its result or exception, its notices).
_Outcome = tuple[bool, Any, list[str]]


def _commit_batch(
    connection: sqlite3.Connection, plans: list[Callable[[], Plan[Any]]]
) -> list[_Outcome]:
    """Run ``plans`` in one transaction, each in a savepoint; commit once."""
    outcomes: list[_Outcome] = []
    connection.execute("BEGIN IMMEDIATE")
    try:
        for make_plan in plans:
            notices: list[str] = []
            connection.execute("SAVEPOINT plan")
            try:
                value = _run_plan_sync(connection, make_plan(), notices)
            except Exception as exc:  # this plan only: the others go on
                connection.execute("ROLLBACK TO plan")
                connection.execute("RELEASE plan")
                outcomes.append((False, exc, []))
            else:
                connection.execute("RELEASE plan")
                outcomes.append((True, value, notices))
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    return outcomes


def _create_private(path: Path) -> None:
    """Create the database's folder (``0700``) and an empty database file (``0600``) if they
    do not exist yet; existing ones keep the mode their operator gave them."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # parents: the umask's default
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


#: inotify's "file was opened" event, and SQLite's lock bytes every open WAL connection
#: holds a shared lock on (its "shared" range of the database file).
_IN_OPEN = 0x20
_SQLITE_SHARED_FIRST = 0x40000002
_SQLITE_SHARED_SIZE = 510


class _OtherProcesses:
    """Whether another process has opened the database file since this one did.

    At start: SQLite in WAL mode keeps a shared lock on the database file for as long as a
    connection is open, and a lock of another process shows through ``F_GETLK``. After
    that: an inotify watch for opens of the file (sticky: an event waits until it is read,
    however briefly the other process stayed). Once another process is seen, this one no
    longer counts as alone until it restarts. Without inotify (not Linux), never alone."""

    def __init__(self, path: Path) -> None:
        self._seen = True
        # Kept open until the database is closed: closing a descriptor of a file releases
        # every POSIX lock this process holds on it, SQLite's included.
        self._file = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._poll: select.poll | None = None
        self._watch = -1
        libc = ctypes.CDLL(None, use_errno=True)
        if not hasattr(libc, "inotify_init1") or not hasattr(libc, "inotify_add_watch"):
            return
        watch = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if watch < 0:
            return
        if libc.inotify_add_watch(watch, os.fsencode(path), _IN_OPEN) < 0:
            os.close(watch)
            return
        self._watch = watch
        self._poll = select.poll()
        self._poll.register(watch, select.POLLIN)
        request = struct.pack(
            "hhqqi", fcntl.F_WRLCK, os.SEEK_SET, _SQLITE_SHARED_FIRST, _SQLITE_SHARED_SIZE, 0
        )
        held = struct.unpack("hhqqi", fcntl.fcntl(self._file, fcntl.F_GETLK, request))
        self._seen = held[0] != fcntl.F_UNLCK

    def seen(self) -> bool:
        if not self._seen and self._poll is not None and self._poll.poll(0):
            self._seen = True
            log.warning(
                "another process opened the SQLite database: Cloud Sync polls are read from"
                " the database from now on (until this server restarts)"
            )
        return self._seen

    def close(self) -> None:
        """Once SQLite's connections are closed (see ``self._file``)."""
        self._seen = True
        if self._watch >= 0:
            os.close(self._watch)
            self._watch = -1
        if self._file >= 0:
            os.close(self._file)
            self._file = -1


class _GroupCommit:
    """:meth:`Database.run_plan` by group commit: plans submitted while a batch is being
    committed wait for it, then go together in the next one (:meth:`_commit_batch`, per
    driver). Each caller is answered after its batch committed, the batch's changes handed to
    the feed in commit order first (and, on PostgreSQL, their notifications back).

    Up to :attr:`max_committers` batches are committed at once: one on SQLite (one writer);
    a few on PostgreSQL, whose round trips are run one after the other within a batch, while
    the database runs several transactions in parallel.

    Concurrent batches must not deadlock: a batch holds the row locks of all its plans until
    its ``COMMIT``, so two batches writing the same two rows in opposite orders would wait
    for each other until PostgreSQL's deadlock detection broke one (a second, by default).
    Each plan therefore names the rows it locks (``lock_order``: a key whose prefix order is
    the rows' hierarchy, trustchain, then stream, then document), and every batch runs its
    plans in that order: all batches take their locks in one global order, so none waits for
    another that waits for it."""

    feed: ChangeFeed
    max_committers: ClassVar[int] = 1
    #: Plans waiting for the next commit (None: none waits).
    _next_batch: _Batch | None = None
    _committers = 0
    #: Transactions committed: how well writes are grouped.
    commits = 0

    async def run_plan(self, plan: Callable[[], Plan[T]], lock_order: str = "") -> T:
        batch = self._next_batch
        if batch is None:
            batch = self._next_batch = _Batch()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        batch.plans.append(plan)
        batch.futures.append(future)
        batch.lock_orders.append(lock_order)
        if len(batch.plans) == 1 and self._committers < self.max_committers:
            self._committers += 1  # takes the batch when it starts, with what joined it
            asyncio.get_running_loop().create_task(self._commit_batches())
        return await future

    async def _commit_batch(
        self, plans: list[Callable[[], Plan[Any]]]
    ) -> tuple[list[_Outcome], list[tuple[str, str]]]:
        """Commit ``plans`` (a plan that raises is not committed, the others are): each
        one's outcome, and the notifications sent to wait for (PostgreSQL)."""
        raise NotImplementedError

    async def _commit_batches(self) -> None:
        """Commit the waiting plans, batch after batch, until none waits."""
        try:
            while self._next_batch is not None:
                batch, self._next_batch = self._next_batch, None
                order = batch.in_lock_order()
                try:
                    committed, sent = await self._commit_batch([batch.plans[i] for i in order])
                    for _, _, notices in committed:
                        _deliver(self.feed, notices)  # in commit order, whoever still waits
                    if sent:  # answered once this process's cache has them (see .changes)
                        await self.feed.received(sent)
                except BaseException as exc:  # nothing of the batch committed
                    for future in batch.futures:
                        if future.done():
                            continue
                        if isinstance(exc, Exception):
                            future.set_exception(exc)
                        else:  # the server is stopping
                            future.cancel()
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for index, (succeeded, value, _) in zip(order, committed, strict=True):
                    future = batch.futures[index]
                    if future.done():  # its caller was cancelled meanwhile
                        continue
                    if succeeded:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._committers -= 1


class SQLiteDatabase(_GroupCommit):
    dialect: ClassVar[str] = "sqlite"
    types: ClassVar[dict[str, str]] = {"blob": "BLOB"}

    def __init__(
        self,
        connection: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        reader: sqlite3.Connection | None = None,
        reader_executor: ThreadPoolExecutor | None = None,
        others: _OtherProcesses | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self._connection = connection
        #: WAL checkpoints, off the commit path (None: SQLite's own, in the commits).
        self.checkpointer = checkpointer
        self._executor = executor
        self._lock = asyncio.Lock()
        self._reader = reader
        self._reader_executor = reader_executor
        self._others = others
        self.feed: ChangeFeed = NoFeed()

    @classmethod
    async def open(cls, path: Path) -> SQLiteDatabase:
        _create_private(path)
        connection, executor = await _open_connection(
            path,
            "sqlite",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA foreign_keys = ON",
            # Checkpoints run in the background (.checkpoints); the commits' own only as a
            # valve, should those fall far behind.
            f"PRAGMA wal_autocheckpoint = {VALVE_PAGES}",
        )
        reader, reader_executor = await _open_connection(
            path, "sqlite-read", "PRAGMA query_only = ON"
        )
        checkpointer = Checkpointer(*await _open_connection(path, "sqlite-checkpoint"))
        # Watched once this process's own connections are open (their opens are not others').
        others = _OtherProcesses(path)
        return cls(connection, executor, reader, reader_executor, others, checkpointer)

    def sole_process(self) -> bool:
        return self._others is not None and not self._others.seen()

    async def read_row(self, sql: str, *args: Any) -> Row | None:
        assert self._reader is not None and self._reader_executor is not None
        reader = self._reader

        def run() -> Row | None:
            row: Row | None = reader.execute(_sqlite_sql(sql), _sqlite_args(args)).fetchone()
            return row

        return await asyncio.get_running_loop().run_in_executor(self._reader_executor, run)

    async def read_snapshot(self, queries: Sequence[Query]) -> list[list[Row]]:
        assert self._reader is not None and self._reader_executor is not None
        reader = self._reader

        def run() -> list[list[Row]]:
            if len(queries) == 1:  # one statement is a snapshot of its own
                sql, args = queries[0]
                return [reader.execute(_sqlite_sql(sql), _sqlite_args(args)).fetchall()]
            reader.execute("BEGIN")  # deferred: the first SELECT fixes the WAL snapshot
            try:
                return [
                    reader.execute(_sqlite_sql(sql), _sqlite_args(args)).fetchall()
                    for sql, args in queries
                ]
            finally:
                reader.execute("COMMIT")

        return await asyncio.get_running_loop().run_in_executor(self._reader_executor, run)

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, job, self._connection
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._lock:
            await self.run(lambda connection: connection.execute("BEGIN IMMEDIATE"))
            connection = _SQLiteConnection(self)
            try:
                yield connection
            except BaseException:
                await self.run(lambda connection: connection.execute("ROLLBACK"))
                raise
            await self.run(lambda connection: connection.execute("COMMIT"))
            self._committed()
            _deliver(self.feed, connection.notices)

    async def _commit_batch(
        self, plans: list[Callable[[], Plan[Any]]]
    ) -> tuple[list[_Outcome], list[tuple[str, str]]]:
        async with self._lock:
            outcomes = await self.run(functools.partial(_commit_batch, plans=plans))
        self._committed()
        return outcomes, []

    def _committed(self) -> None:
        self.commits += 1
        if self.checkpointer is not None:
            self.checkpointer.after_commit()

    async def close(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.close()
        async with self._lock:
            await self.run(lambda connection: connection.close())
        self._executor.shutdown(wait=True)
        if self._reader is not None and self._reader_executor is not None:
            reader = self._reader
            await asyncio.get_running_loop().run_in_executor(self._reader_executor, reader.close)
            self._reader_executor.shutdown(wait=True)
        if self._others is not None:
            self._others.close()


async def _open_connection(
    path: Path, thread_name: str, *pragmas: str
) -> tuple[sqlite3.Connection, ThreadPoolExecutor]:
    """A connection to ``path`` and the one thread that uses it, set up by ``pragmas``."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)

    def setup() -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout = 10000")
        for pragma in pragmas:
            connection.execute(pragma)
        return connection

    connection = await asyncio.get_running_loop().run_in_executor(executor, setup)
    return connection, executor


def _deliver(feed: ChangeFeed, notices: list[str]) -> None:
    for message in notices:
        feed.committed(message)


# --- PostgreSQL --------------------------------------------------------------------------------


class _PostgresConnection:
    def __init__(self, connection: Any, feed: ChangeFeed) -> None:
        self._connection = connection
        self._feed = feed
        #: Messages to hand to the feed once committed.
        self.notices: list[str] = []
        #: The notifications this transaction sent (they come back once committed).
        self.sent: list[tuple[str, str]] = []

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await self._connection.execute(sql, *args)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def notice(self, message: str) -> None:
        notification = self._feed.in_transaction(message)
        if notification is not None:
            await self._connection.execute("SELECT pg_notify($1, $2)", *notification)
            self.sent.append(notification)
        self.notices.append(message)

    async def change(self, message: str, sql: str, args: tuple[Any, ...]) -> int:
        notification = self._feed.in_transaction(message)
        if notification is None:
            changed = await self.execute(sql, *args)
        else:
            changed = await self.execute(_notifying(sql, len(args)), *args, *notification)
            if changed:
                self.sent.append(notification)
        if changed:
            self.notices.append(message)
        return changed

    async def run(self, plan: Plan[T]) -> T:
        result: Any = None
        try:
            while True:
                kind, sql, args, message = plan.send(result)
                if kind == "fetchrow":
                    result = await self.fetchrow(sql, *args)
                elif kind == "change" and message is not None:
                    result = await self.change(message, sql, args)
                else:
                    result = await self.execute(sql, *args)
        except StopIteration as done:
            value: T = done.value
            return value

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._connection.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._connection.fetchrow(sql, *args)
        return row


class _BatchFailed(Exception):
    """A plan of a group commit raised: the batch was rolled back, before its ``COMMIT``."""


async def _keep_session(connection: Any) -> None:
    """How a pooled connection is reset when released: not at all beyond what asyncpg always
    does (roll back a transaction left open). Its default reset is one more round trip per
    release (``UNLISTEN *; RESET ALL; CLOSE ALL; SELECT pg_advisory_unlock_all()``), which
    doubled the cost of a one-statement read; pooled connections here never change their
    session: no ``SET``, ``LISTEN`` (the broker has its own connections), cursor or
    session-level advisory lock (only transaction-scoped ones)."""


class PostgresDatabase(_GroupCommit):
    dialect: ClassVar[str] = "postgresql"
    max_committers: ClassVar[int] = 4
    types: ClassVar[dict[str, str]] = {"blob": "BYTEA"}
    #: Batches rolled back and run again plan by plan (a plan raised, or a deadlock).
    batches_rerun = 0

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self.feed: ChangeFeed = NoFeed()

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        import asyncpg  # type: ignore[import-untyped]

        pool = await asyncpg.create_pool(url, min_size=1, max_size=10, reset=_keep_session)
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._transaction() as connection:
            yield connection

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_PostgresConnection]:
        async with self._pool.acquire() as raw:
            async with raw.transaction():
                connection = _PostgresConnection(raw, self.feed)
                yield connection
            _deliver(self.feed, connection.notices)
        if connection.sent:  # answered once this process's cache has it (see .changes)
            await self.feed.received(connection.sent)

    async def _commit_batch(
        self, plans: list[Callable[[], Plan[Any]]]
    ) -> tuple[list[_Outcome], list[tuple[str, str]]]:
        # No savepoint per plan (two more round trips each, here over a socket): the plans
        # run one after the other in one transaction; if one raises, the whole batch is
        # rolled back before its COMMIT and each plan runs again alone (as without grouping),
        # so a failing plan is still the only one to fail.
        if len(plans) > 1:
            try:
                return await self._commit_together(plans)
            except _BatchFailed:
                self.batches_rerun += 1
        outcomes: list[_Outcome] = []
        for make_plan in plans:
            try:
                async with self._transaction() as connection:  # delivers its changes
                    value = await connection.run(make_plan())
            except Exception as exc:
                outcomes.append((False, exc, []))
            else:
                outcomes.append((True, value, []))
            self.commits += 1
        return outcomes, []

    async def _commit_together(
        self, plans: list[Callable[[], Plan[Any]]]
    ) -> tuple[list[_Outcome], list[tuple[str, str]]]:
        """All ``plans`` in one transaction; :class:`_BatchFailed` if one raised (nothing
        committed). An error of the ``COMMIT`` itself propagates (the batch may or may not
        have committed: it is not run again)."""
        outcomes: list[_Outcome] = []
        async with self._pool.acquire() as raw:
            transaction = raw.transaction()
            await transaction.start()
            connection = _PostgresConnection(raw, self.feed)
            try:
                for make_plan in plans:
                    first = len(connection.notices)
                    value = await connection.run(make_plan())
                    outcomes.append((True, value, connection.notices[first:]))
            except BaseException as exc:
                await transaction.rollback()
                if isinstance(exc, Exception):
                    raise _BatchFailed from exc
                raise
            await transaction.commit()
        self.commits += 1
        return outcomes, connection.sent

    def sole_process(self) -> bool:
        return False

    async def read_row(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._pool.fetchrow(sql, *args)
        return row

    async def read_snapshot(self, queries: Sequence[Query]) -> list[list[Row]]:
        if len(queries) == 1:  # one statement is a snapshot of its own: one round trip
            sql, args = queries[0]
            return [list(await self._pool.fetch(sql, *args))]
        async with (
            self._pool.acquire() as raw,
            raw.transaction(isolation="repeatable_read", readonly=True),
        ):
            return [list(await raw.fetch(sql, *args)) for sql, args in queries]

    async def close(self) -> None:
        await self._pool.close()
