"""The real server for tests, in the test process or in a child process.

* :class:`RunningServer` serves ``create_app(config, clock=…)`` with uvicorn, configured by the
  same :func:`~ledgersync.server.run.uvicorn_config` as ``ledgersync serve``, in a background
  thread. The listening socket is bound (port 0) and listening *before* the thread starts, so
  a client may connect at once: the kernel queues the connection until uvicorn accepts it.
  No sleeping, no polling.
* :class:`ManualClock` is the clock tests move forward instead of waiting.
* :func:`server_config` is the configuration tests use (a database, a key file in the test's
  directory, generous rate limits); :func:`running_server` a :class:`RunningServer` on SQLite.
* :class:`HeldSocketServer` is :class:`ledgersync.testing.LocalServer` on a listening socket
  the test holds: the child process (the app and uvicorn settings of ``ledgersync serve``)
  inherits it, so clients may connect at once and requests sent while a killed server is
  replaced wait in the kernel's queue for the next process. No sleeping, no polling.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import uvicorn

from ledgersync.server import ServerConfig, create_app
from ledgersync.server.run import uvicorn_config
from ledgersync.testing import LocalServer


def listening_socket() -> socket.socket:
    """A socket of 127.0.0.1 on a free port, listening: clients may connect before a server
    accepts (the kernel queues up to 1024 connections)."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(("127.0.0.1", 0))
    listening.listen(1024)
    return listening


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
        self._socket = listening_socket()
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


#: The databases the server tests run on (``backend`` parametrizes them).
BACKENDS = ["sqlite", "postgres"]


def server_config(database_url: str, directory: Path, **changes: Any) -> ServerConfig:
    defaults: dict[str, Any] = {
        "database": database_url,
        "key_file": directory / "server-key.json",
        "public_url": "http://ledgersync.test",
        "rate_limit_per_minute": 100_000,
        "rate_limit_burst": 100_000,
    }
    defaults.update(changes)
    return ServerConfig(**defaults)


@contextmanager
def running_server(directory: Path, **changes: Any) -> Iterator[RunningServer]:
    """The real server on SQLite in ``directory``, with a manual clock."""
    config = server_config(f"sqlite:///{directory / 'ledgersync.sqlite'}", directory, **changes)
    server = RunningServer(config, ManualClock()).start()
    try:
        yield server
    finally:
        server.stop()


#: The server process of :class:`HeldSocketServer`: ``ledgersync serve`` less the binding.
_SERVE_ON_INHERITED_SOCKET = """
import socket, sys
import uvicorn
from ledgersync.server import ServerConfig, create_app
from ledgersync.server.logs import configure_logging
from ledgersync.server.run import uvicorn_config

listening = socket.socket(fileno=int(sys.argv[1]))
config = ServerConfig.from_env()
configure_logging(config.log_level)
uvicorn.Server(uvicorn_config(config, create_app(config))).run(sockets=[listening])
"""


class HeldSocketServer(LocalServer):
    """A :class:`~ledgersync.testing.LocalServer` whose listening socket the test holds: it
    keeps its port across :meth:`kill` and :meth:`restart`, and connections made while no
    process runs are queued, not refused."""

    def __init__(self, directory: Path, **settings: Any) -> None:
        super().__init__(directory, **settings)
        self._socket = listening_socket()
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        fd = str(self._socket.fileno())
        return [*self.launcher, sys.executable, "-c", _SERVE_ON_INHERITED_SOCKET, fd]

    def choose_port(self) -> int:
        return self.port

    def inherited_fds(self) -> tuple[int, ...]:
        return (self._socket.fileno(),)

    def close(self) -> None:
        super().close()
        self._socket.close()
