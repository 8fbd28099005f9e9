"""Fixtures of the security suite: the server tests' real servers (both backends) and a
populated "world" to attack.

The server fixtures are the ones of ``tests/server/conftest.py`` (``backend`` parametrizes
every test over SQLite and PostgreSQL; ``make_server`` starts a real uvicorn server).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..server.conftest import (  # noqa: F401 - fixtures, shared with the server tests
    backend,
    database_url,
    make_server,
)
from ..support.logs import LogRecords, captured_logs, server_failures
from ..support.servers import BACKENDS, ManualClock, RunningServer, server_config
from ..support.world import SWEEP_LIMITS, World, populate


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World[RunningServer]]:
    """One populated server per test module and backend, shared by the module's tests (the
    sweeps change nothing the next probe depends on)."""
    directory = tmp_path_factory.mktemp("security")
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'ledgersync.sqlite'}"
    else:
        url = request.getfixturevalue("ledgersync_postgres").create_database()
    server = RunningServer(server_config(url, directory, **SWEEP_LIMITS), ManualClock()).start()
    try:
        yield populate(server)
    finally:
        server.stop()


@pytest.fixture
def server_log() -> Iterator[LogRecords]:
    """Every log record of the (in-process) server during the test; the test fails if one
    betrays an internal error (see :func:`~tests.support.logs.server_failures`)."""
    with captured_logs() as records:
        yield records
    failures = server_failures(records.records)
    assert not failures, "the server logged internal errors:\n" + "\n".join(failures)
