"""Fixtures of the security suite: the server tests' real servers (both backends) and a
populated "world" to attack.

The server fixtures are the ones of ``tests/server/conftest.py`` (``backend`` parametrizes
every test over SQLite and PostgreSQL; ``make_server`` starts a real uvicorn server).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx2
import pytest

from ledgersync.protocol import KeyPair

from ..server.conftest import (  # noqa: F401 - fixtures, shared with the server tests
    BACKENDS,
    backend,
    database_url,
    make_server,
    postgres,
    server_config,
)
from ..server.harness import ManualClock, RunningServer
from ..server.helpers import Session, Trustchain, app_path, created_trustchain, login_member
from .probes import DEADLINE, server_failures

#: Small enough that "too large" probes stay fast, large enough for every legitimate probe.
SWEEP_LIMITS = {"cloudsync_max_payload_bytes": 256 * 1024}


@dataclass
class World:
    """A server with one trustchain: its device (logged in) and one member (logged in)."""

    server: RunningServer
    client: httpx2.Client
    trustchain: Trustchain
    device: Session
    member_key: KeyPair
    member: Session

    @property
    def trustchain_id(self) -> str:
        return self.trustchain.id

    @property
    def path(self) -> str:
        return app_path(0)

    def document(self, **extra: str) -> list[tuple[str, str]]:
        return [("id", self.trustchain_id), ("path", self.path), *extra.items()]


def populate(server: RunningServer) -> World:
    client = server.client()
    trustchain, device, keys = created_trustchain(client, members=1)
    member = login_member(client, keys[0], trustchain.id)
    return World(server, client, trustchain, device, keys[0], member)


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One populated server per test module and backend, shared by the module's tests (the
    sweeps change nothing the next probe depends on)."""
    directory = tmp_path_factory.mktemp("security")
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'ledgersync.sqlite'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    server = RunningServer(server_config(url, directory, **SWEEP_LIMITS), ManualClock()).start()
    try:
        yield populate(server)
    finally:
        server.stop()


class ServerLog(logging.Handler):
    """Every log record emitted while a test runs (the in-process server's included), and a
    way to wait for one: the server logs each request once it is finished."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def mark(self) -> int:
        return len(self.records)

    def wait_for(
        self, predicate: Callable[[logging.LogRecord], bool], since: int = 0
    ) -> logging.LogRecord:
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

        def matches(record: logging.LogRecord) -> bool:
            return record.name == "ledgersync.requests" and record.__dict__.get("route") == route

        return await asyncio.to_thread(self.wait_for, matches, since)


@pytest.fixture
def server_log() -> Iterator[ServerLog]:
    """Every log record of the (in-process) server during the test; the test fails if one
    betrays an internal error (see :func:`~.probes.server_failures`)."""
    handler = ServerLog()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    failures = server_failures(handler.records)
    assert not failures, "the server logged internal errors:\n" + "\n".join(failures)
