"""Fixtures: the real server over HTTP, on SQLite and on PostgreSQL.

* ``ledgersync_postgres`` (session, from :mod:`ledgersync.testing`): one embedded PostgreSQL
  cluster, started on first use;
* ``backend``: ``"sqlite"`` or ``"postgres"``; every test using ``make_server``/``server`` runs
  once per backend;
* ``database_url``: a fresh database for this test on that backend;
* ``make_server(**config_changes)``: start a server (fresh database, temporary key file,
  generous rate limits, a :class:`~tests.support.servers.ManualClock`) and stop it after the test;
* ``server``: ``make_server()`` with the defaults; ``client``: an ``httpx2.Client`` on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ledgersync.testing import EmbeddedPostgres

from ..support.servers import BACKENDS, ManualClock, RunningServer, server_config


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledgersync.sqlite'}"
    cluster: EmbeddedPostgres = request.getfixturevalue("ledgersync_postgres")
    return cluster.create_database()


@pytest.fixture
def make_server(database_url: str, tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def make(clock: ManualClock | None = None, **changes: Any) -> RunningServer:
        config = server_config(database_url, tmp_path, **changes)
        server = RunningServer(config, clock or ManualClock())
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., RunningServer]) -> RunningServer:
    return make_server()


@pytest.fixture
def client(server: RunningServer) -> httpx2.Client:
    return server.client()
