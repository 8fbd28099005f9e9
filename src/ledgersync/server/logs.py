"""Structured logs: one JSON object per line, on standard error.

Request lines carry method, route template, status and duration, never the client's address
unless ``log_client_ip`` is set, and never a token, key or body.

Request lines are the hot path (one per request): while the logging configuration is the one
:func:`configure_logging` installed for JSON (its one handler on the root logger, nothing
added since), :class:`RequestLines` writes them itself: the same JSON line the formatter
would write, assembled from precomputed pieces (everything up to the duration, per method,
route and status; the time, per millisecond), no ``LogRecord``, no ``json.dumps``, no
formatting of the time per request. Lines are buffered and written at the end of the event
loop's current iteration, together (one ``write`` for a burst of requests), and at exit; the
configuration is checked once per iteration too (at its first line). Any other configuration
(handlers added, as tests do) gets ordinary log records.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

#: Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured duplicate of the message
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """One readable line per record (``ledgersync serve`` on a terminal)."""

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        )
        line = f"{time} {record.levelname.lower():7} {record.getMessage()}"
        line = f"{line}  {extras}" if extras else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


#: The logger of request lines.
REQUESTS_LOGGER = "ledgersync.requests"


class RequestLines:
    """Request lines written straight to the JSON handler's stream (see the module doc)."""

    def __init__(self, handler: logging.StreamHandler[TextIO]) -> None:
        self._handler = handler
        self._root = logging.getLogger()
        self._logger = logging.getLogger(REQUESTS_LOGGER)
        #: (method, route, status) -> the line from the time's end to the duration. Bounded:
        #: the HTTP parser knows a few dozen methods, routes are templates.
        self._heads: dict[tuple[str, str, int], str] = {}
        self._second = -1
        self._second_text = ""
        self._millisecond = -1
        #: The line's start, up to its time's end, for ``_millisecond``.
        self._time_text = ""
        self._pending: list[str] = []
        self._flush_scheduled = False

    def active(self) -> bool:
        """Whether lines may bypass ``logging`` (the configuration is still ours). Checked at
        the first line of a loop iteration; the others of the iteration follow it."""
        if self._flush_scheduled:
            return True
        root, logger = self._root, self._logger
        return (
            len(root.handlers) == 1
            and root.handlers[0] is self._handler
            and logger.propagate
            and not logger.handlers
            and not logger.filters
            and not root.filters
            and not self._handler.filters
            and logger.isEnabledFor(logging.INFO)
        )

    def write(
        self, method: str, route: str, status: int, duration_ms: float, client: str | None
    ) -> None:
        """One request line, as ``JsonFormatter`` would format the record."""
        head = self._heads.get((method, route, status))
        if head is None:
            head = self._heads[(method, route, status)] = (
                f'", "level": "info", "logger": "{REQUESTS_LOGGER}", "message": "request",'
                f' "method": {json.dumps(method)}, "route": {json.dumps(route)},'
                f' "status": {status}, "duration_ms": '
            )
        millisecond = int(time.time() * 1000)
        if millisecond != self._millisecond:
            self._stamp(millisecond)
        if client is None:
            self._pending.append(f"{self._time_text}{head}{duration_ms!r}}}\n")
        else:
            self._pending.append(
                f'{self._time_text}{head}{duration_ms!r}, "client": {json.dumps(client)}}}\n'
            )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: at once
                self.flush()

    def _stamp(self, millisecond: int) -> None:
        """The start of the lines written during ``millisecond`` (since the epoch)."""
        second, fraction = divmod(millisecond, 1000)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        self._millisecond = millisecond
        self._time_text = f'{{"time": "{self._second_text}.{fraction:03d}+00:00'

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        text, self._pending = "".join(self._pending), []
        handler = self._handler
        with handler.lock or _NO_LOCK:
            try:
                handler.stream.write(text)
                handler.flush()
            except (OSError, ValueError):  # stderr closed or gone: nothing to do
                pass


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK: Any = _NoLock()

#: Installed by :func:`configure_logging` (JSON), else None.
_request_lines: RequestLines | None = None


def request_lines() -> RequestLines | None:
    """The direct writer of request lines, if the logging configuration allows it now."""
    lines = _request_lines
    return lines if lines is not None and lines.active() else None


def _flush_request_lines() -> None:
    if _request_lines is not None:
        _request_lines.flush()


atexit.register(_flush_request_lines)


def configure_logging(level: str = "info", text: bool = False) -> None:
    global _request_lines
    _flush_request_lines()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if text else JsonFormatter())
    _request_lines = None if text else RequestLines(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access log writes client addresses: no handler, no propagation, and uvicorn
    # then skips it entirely (it checks hasHandlers()).
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
