"""Real server processes for multi-process tests.

:class:`ServerProcess` runs the server in a child Python process with the same app and
uvicorn settings as ``ledgersync serve`` (``create_app`` + ``uvicorn_config``), configured by
``LEDGERSYNC_*`` variables. The listening socket is bound and listening in the test process
and inherited by the child, so clients may connect at once: the kernel queues connections
until the child, its startup done, accepts them. No sleeping, no polling.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2

_CHILD = """
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


class ServerProcess:
    def __init__(self, database_url: str, key_file: Path, log: Path, **settings: Any) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(1024)
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "LEDGERSYNC_DATABASE": database_url,
            "LEDGERSYNC_KEY_FILE": str(key_file),
            "LEDGERSYNC_PUBLIC_URL": "http://ledgersync.test",
            "LEDGERSYNC_PORT": str(self.port),
            "LEDGERSYNC_RATE_LIMIT_PER_MINUTE": "100000",
            "LEDGERSYNC_RATE_LIMIT_BURST": "100000",
            "LEDGERSYNC_LOG_LEVEL": "warning",
        }
        env.update({f"LEDGERSYNC_{name.upper()}": str(value) for name, value in settings.items()})
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(self._socket.fileno())],
            env=env,
            pass_fds=[self._socket.fileno()],
            stdout=self._log,
            stderr=self._log,
        )
        self._clients: list[httpx2.Client] = []

    def start(self) -> ServerProcess:
        with self.client() as client:
            response = client.get("/_info", timeout=60)
            assert response.status_code == 200, response.text
        return self

    def client(self) -> httpx2.Client:
        client = httpx2.Client(base_url=self.url, timeout=30)
        self._clients.append(client)
        return client

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self._socket.close()
        self._log.close()
