"""A real ``ledgersync serve`` for tests, demos and apps built on ledgersync.

``LocalServer`` starts the server as a subprocess on a free loopback port, with its SQLite
database and key file in a temporary directory of its own, and stops it (and removes the
directory) on exit::

    from ledgersync.testing import LocalServer

    with LocalServer() as server:
        print(server.url)          # http://127.0.0.1:<port>, both APIs

With pytest, ``ledgersync_server`` is a ready-made fixture: add
``pytest_plugins = ["ledgersync.testing"]`` to a ``conftest.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

START_TIMEOUT = 30.0

#: Settings a test server gets unless told otherwise: tests log in many times from one address.
TEST_SETTINGS = {
    "RATE_LIMIT_PER_MINUTE": "1000000",
    "RATE_LIMIT_BURST": "1000000",
    "QR_IDLE_TIMEOUT": "60",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ledgersync_command(*arguments: str) -> list[str]:
    """The ``ledgersync`` command of this Python environment."""
    script = Path(sys.executable).with_name("ledgersync")
    if script.exists():
        return [str(script), *arguments]
    return [sys.executable, "-m", "ledgersync.cli.main", *arguments]


class ServerDidNotStart(RuntimeError):
    pass


class LocalServer:
    """``ledgersync serve`` on ``127.0.0.1:<free port>``; ``settings`` are ``LEDGERSYNC_*``
    variables without the prefix (``LocalServer(access_token_ttl=2)``)."""

    def __init__(self, directory: Path | None = None, **settings: Any) -> None:
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="ledgersync-server-"))
        self.settings = {**TEST_SETTINGS, **{k.upper(): str(v) for k, v in settings.items()}}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.port = 0
        self.log = self.directory / "server.log"

    def environment(self, port: int) -> Mapping[str, str]:
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "LEDGERSYNC_HOST": "127.0.0.1",
            "LEDGERSYNC_PORT": str(port),
            "LEDGERSYNC_PUBLIC_URL": url,
            "LEDGERSYNC_DATABASE": f"sqlite:///{self.directory / 'ledgersync.sqlite'}",
            "LEDGERSYNC_KEY_FILE": str(self.directory / "server-key.json"),
        }
        env.update({f"LEDGERSYNC_{name}": value for name, value in self.settings.items()})
        return env

    def start(self) -> LocalServer:
        for _ in range(3):  # the free port can be taken between probe and bind: retry
            port = free_port()
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    ledgersync_command("serve"),
                    cwd=self.directory,
                    env=dict(self.environment(port)),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            self.port, self.url = port, f"http://127.0.0.1:{port}"
            if self._wait_ready():
                return self
            self.stop()
        raise ServerDidNotStart(f"ledgersync serve did not start:\n{self.log_tail()}")

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
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


try:  # the pytest fixture, when pytest is there
    import pytest

    @pytest.fixture
    def ledgersync_server() -> Iterator[LocalServer]:
        """A fresh ``ledgersync serve`` for one test."""
        with LocalServer() as server:
            yield server

except ImportError:  # pragma: no cover
    pass
