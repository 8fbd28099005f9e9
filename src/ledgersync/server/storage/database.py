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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit

Row = Sequence[Any]
T = TypeVar("T")


class Connection(Protocol):
    """A connection inside a transaction."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...


class Database(Protocol):
    #: ``"sqlite"`` or ``"postgresql"``.
    dialect: ClassVar[str]
    #: DDL type names for this dialect, used as ``{blob}`` in migrations.
    types: ClassVar[dict[str, str]]

    def transaction(self) -> AbstractAsyncContextManager[Connection]: ...

    async def read_row(self, sql: str, *args: Any) -> Row | None:
        """One read-only statement outside any transaction block: it sees committed data only
        and waits for no writer (SQLite: a separate reader connection, WAL; PostgreSQL: one
        pooled round trip). For hot single-row reads."""
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


def _sqlite_sql(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)


def _sqlite_args(args: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(int(arg) if isinstance(arg, bool) else arg for arg in args)


class _SQLiteConnection:
    def __init__(self, database: SQLiteDatabase) -> None:
        self._database = database

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


def _create_private(path: Path) -> None:
    """Create the database's folder (``0700``) and an empty database file (``0600``) if they
    do not exist yet; existing ones keep the mode their operator gave them."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # parents: the umask's default
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class SQLiteDatabase:
    dialect: ClassVar[str] = "sqlite"
    types: ClassVar[dict[str, str]] = {"blob": "BLOB"}

    def __init__(
        self,
        connection: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        reader: sqlite3.Connection | None = None,
        reader_executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self._connection = connection
        self._executor = executor
        self._lock = asyncio.Lock()
        self._reader = reader
        self._reader_executor = reader_executor

    @classmethod
    async def open(cls, path: Path) -> SQLiteDatabase:
        _create_private(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

        def setup() -> sqlite3.Connection:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout = 10000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            return connection

        connection = await asyncio.get_running_loop().run_in_executor(executor, setup)
        reader_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-read")

        def setup_reader() -> sqlite3.Connection:
            reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            reader.execute("PRAGMA busy_timeout = 10000")
            reader.execute("PRAGMA query_only = ON")
            return reader

        loop = asyncio.get_running_loop()
        reader = await loop.run_in_executor(reader_executor, setup_reader)
        return cls(connection, executor, reader, reader_executor)

    async def read_row(self, sql: str, *args: Any) -> Row | None:
        assert self._reader is not None and self._reader_executor is not None
        reader = self._reader

        def run() -> Row | None:
            row: Row | None = reader.execute(_sqlite_sql(sql), _sqlite_args(args)).fetchone()
            return row

        return await asyncio.get_running_loop().run_in_executor(self._reader_executor, run)

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, job, self._connection
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._lock:
            await self.run(lambda connection: connection.execute("BEGIN IMMEDIATE"))
            try:
                yield _SQLiteConnection(self)
            except BaseException:
                await self.run(lambda connection: connection.execute("ROLLBACK"))
                raise
            await self.run(lambda connection: connection.execute("COMMIT"))

    async def close(self) -> None:
        async with self._lock:
            await self.run(lambda connection: connection.close())
        self._executor.shutdown(wait=True)
        if self._reader is not None and self._reader_executor is not None:
            reader = self._reader
            await asyncio.get_running_loop().run_in_executor(self._reader_executor, reader.close)
            self._reader_executor.shutdown(wait=True)


# --- PostgreSQL --------------------------------------------------------------------------------


class _PostgresConnection:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await self._connection.execute(sql, *args)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._connection.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._connection.fetchrow(sql, *args)
        return row


class PostgresDatabase:
    dialect: ClassVar[str] = "postgresql"
    types: ClassVar[dict[str, str]] = {"blob": "BYTEA"}

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @property
    def pool(self) -> Any:
        """The asyncpg pool, for what the seam does not cover (LISTEN/NOTIFY connections)."""
        return self._pool

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        import asyncpg  # type: ignore[import-untyped]

        pool = await asyncpg.create_pool(url, min_size=1, max_size=10)
        return cls(pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._pool.acquire() as connection, connection.transaction():
            yield _PostgresConnection(connection)

    async def read_row(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._pool.fetchrow(sql, *args)
        return row

    async def close(self) -> None:
        await self._pool.close()
