"""A real ``ledgersync serve`` for the interop suite: a subprocess on a free local port.

Each server gets its own temporary directory (SQLite database and key file). Readiness is
waited on by polling ``/_info`` with a deadline; the process is stopped at teardown.
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
from pathlib import Path
from typing import Any

START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ledgersync_command() -> list[str]:
    script = Path(sys.executable).with_name("ledgersync")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "ledgersync.cli.main", "serve"]


class Server:
    """``ledgersync serve`` with ``LEDGERSYNC_*`` settings from ``settings``."""

    def __init__(self, **settings: Any) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="ledgersync-interop-"))
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = self.directory / "server.log"

    def start(self) -> Server:
        for _ in range(3):  # the free port can be taken between probe and bind: retry
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                "LEDGERSYNC_HOST": "127.0.0.1",
                "LEDGERSYNC_PORT": str(port),
                "LEDGERSYNC_PUBLIC_URL": self.url,
                "LEDGERSYNC_DATABASE": f"sqlite:///{self.directory / 'ledgersync.sqlite'}",
                "LEDGERSYNC_KEY_FILE": str(self.directory / "server-key.json"),
                # Every test logs in many times from 127.0.0.1.
                "LEDGERSYNC_RATE_LIMIT_PER_MINUTE": "1000000",
                "LEDGERSYNC_RATE_LIMIT_BURST": "1000000",
                # A pairing that goes wrong fails in a minute, not five.
                "LEDGERSYNC_QR_IDLE_TIMEOUT": "60",
            }
            for name, value in self.settings.items():
                env[f"LEDGERSYNC_{name.upper()}"] = str(value)
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    _ledgersync_command(),
                    cwd=self.directory,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"ledgersync serve did not start:\n{self.log_tail()}")

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
            time.sleep(0.05)  # polling a condition with a deadline, not synchronisation
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
        shutil.rmtree(self.directory, ignore_errors=True)
