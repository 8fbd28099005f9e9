"""SQLite's WAL checkpoints, off the commit path.

In WAL mode a commit appends pages to the ``-wal`` file; a *checkpoint* copies them back into
the database file and syncs it. By default SQLite runs one inside the commit that takes the WAL
past 1,000 pages, so that every few hundred milliseconds under load one group commit also
copied the WAL back and synced the database file, and every write of the batch (and of the
next, waiting for it) was answered that much later: the tail of the durable writes' p99
(docs/benchmarks.md). Here commits only append (and sync the WAL, as before: durability is
unchanged), and :class:`Checkpointer` runs a ``PASSIVE`` checkpoint on a connection and thread
of its own at most :data:`CHECKPOINT_DELAY` seconds after a commit. ``PASSIVE`` waits for no
reader or writer: it copies what no reader still needs, while commits go on appending.

The writer keeps SQLite's own checkpoint as a valve (:data:`VALVE_PAGES`): should the
background ones fall behind that far (a reader holding an old snapshot, a disk slower than the
writes), the commit path checkpoints again, so the WAL stays bounded."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("ledgersync.storage")

#: Longest a commit waits to be checkpointed (seconds): the WAL holds about that much writing.
CHECKPOINT_DELAY = 0.1
#: WAL pages (4 KiB each) past which the commit path checkpoints (SQLite's default: 1,000).
VALVE_PAGES = 10_000


class Checkpointer:
    """``PASSIVE`` checkpoints of one database, on a connection of their own and the one
    thread that uses it, at most :data:`CHECKPOINT_DELAY` after each :meth:`after_commit`, one
    at a time."""

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._connection = connection
        self._executor = executor
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        #: Commits since the last checkpoint began (they wait for the next one).
        self._pending = False
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    def after_commit(self) -> None:
        """A commit appended to the WAL: checkpoint within :data:`CHECKPOINT_DELAY`."""
        if self._closed:
            return
        self._pending = True
        self._idle.clear()
        if self._timer is None and self._running is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(CHECKPOINT_DELAY, self._start)

    async def idle(self) -> None:
        """Return once every commit announced so far has been checkpointed (tests)."""
        await self._idle.wait()

    def _start(self) -> None:
        self._timer = None
        self._pending = False
        self._running = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        connection = self._connection

        def run() -> None:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except sqlite3.Error as exc:  # the next commit tries again; the valve bounds the WAL
            log.warning("background checkpoint failed", extra={"error": str(exc)})
        finally:
            self._running = None
        if self._pending and not self._closed:  # commits during this one: another
            self._timer = asyncio.get_running_loop().call_later(CHECKPOINT_DELAY, self._start)
        else:
            self._idle.set()

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running is not None:
            await asyncio.shield(self._running)
        connection = self._connection
        await asyncio.get_running_loop().run_in_executor(self._executor, connection.close)
        self._executor.shutdown(wait=True)
        self._idle.set()
