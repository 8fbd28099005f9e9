"""The log records of the test process (the in-process server's included), and waiting for
one: the server logs each request once it is finished."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ledgersync.server.logs import JsonFormatter

from . import DEADLINE


class LogRecords(logging.Handler):
    """Every log record emitted while it is installed (see :func:`captured_logs`)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def mark(self) -> int:
        """A point in the log: :meth:`wait_for` ``since`` it looks only at later records."""
        return len(self.records)

    def wait_for(
        self, predicate: Callable[[logging.LogRecord], bool], since: int = 0
    ) -> logging.LogRecord:
        """The first record (after ``since``) that ``predicate`` accepts, once it is logged
        (within :data:`~tests.support.DEADLINE`)."""
        with self._changed:
            found: list[logging.LogRecord] = []

            def seen() -> bool:
                found[:] = [record for record in self.records[since:] if predicate(record)]
                return bool(found)

            if not self._changed.wait_for(seen, timeout=DEADLINE):
                raise AssertionError("the server did not log the expected record in time")
            return found[0]

    async def finished(self, route: str, since: int = 0) -> logging.LogRecord:
        """The request log line of ``route`` (a route template), once the server wrote it."""
        return await asyncio.to_thread(self.wait_for, request_record(route), since)

    def lines(self) -> list[str]:
        """The records as the server writes them (JSON lines)."""
        return [JsonFormatter().format(record) for record in self.records]

    def problems(self) -> list[str]:
        """Warnings, errors and tracebacks."""
        return [
            f"{record.name}: {record.getMessage()}"
            for record in self.records
            if record.levelno >= logging.WARNING or record.exc_info
        ]


def request_record(route: str) -> Callable[[logging.LogRecord], bool]:
    """Whether a record is the request log line of ``route`` (a route template)."""

    def matches(record: logging.LogRecord) -> bool:
        return record.name == "ledgersync.requests" and record.__dict__.get("route") == route

    return matches


@contextmanager
def captured_logs() -> Iterator[LogRecords]:
    """Every record logged at INFO and above (DEBUG where a logger asks for it) meanwhile."""
    handler = LogRecords()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def server_failures(records: list[logging.LogRecord]) -> list[str]:
    """Log records that betray an internal error: ERROR or worse (tracebacks included), or
    a request line logged with a 5xx status."""
    found = []
    for record in records:
        status = getattr(record, "status", None)
        if record.levelno >= logging.ERROR:
            found.append(f"{record.name} {record.levelname}: {record.getMessage()[:300]}")
        elif (
            record.name == "ledgersync.requests"
            and record.__dict__.get("method") != "WEBSOCKET"  # its status is the close code
            and isinstance(status, int)
            and 500 <= status < 600
        ):
            found.append(f"request logged with status {status}: {record.__dict__.get('route')}")
    return found
