"""Driving ``ledgersync`` wallet commands as subprocesses, with deadlines instead of sleeps."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgersync.device import ProfileStore, SoftwareDevice, approve_all
from ledgersync.testing import ledgersync_command
from ledgersync.wallet import InstanceStore, Wallet, actions

from ..support.wallets import ETH

TXID = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
DEADLINE = 30.0


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def __str__(self) -> str:
        return f"ledgersync {' '.join(self.args)} → {self.code}\n{self.out}\n{self.err}"


class Background:
    """A running ``ledgersync`` whose output lines are read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
        self.seen: list[str] = []
        self.err = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        self.err = self.process.stderr.read()

    def wait_line(
        self, matches: Callable[[str], bool], timeout: float = DEADLINE
    ) -> tuple[float, str]:
        """The first new line ``matches`` accepts, with the time it was read."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout} s; seen: {self.seen}")
            try:
                at, line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(5)
                self._err_reader.join(5)
                raise AssertionError(
                    f"process ended ({self.process.returncode}) before a matching line; "
                    f"seen: {self.seen}; stderr: {self.err}"
                )
            self.seen.append(line)
            if matches(line):
                return at, line

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def finish(self, timeout: float = DEADLINE) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        self._err_reader.join(5)
        while True:
            try:
                _, line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class CLI:
    """``ledgersync`` with its own home directory."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("LEDGERSYNC_INSTANCE", "LEDGERSYNC_DEVICE", "LEDGERSYNC_HOME")
        }
        self.env.update({"LEDGERSYNC_HOME": str(home), "NO_COLOR": "1", **(env or {})})
        self.started: list[Background] = []

    def __call__(self, *args: str, input: str | None = None, timeout: float = DEADLINE) -> Result:
        done = subprocess.run(
            ledgersync_command(*args),
            env=self.env,
            input=input.encode() if input is not None else None,
            capture_output=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        # Bytes decoded by hand: universal newlines would hide the CSV's \r\n.
        out, err = (stream.decode("utf-8", "replace") for stream in (done.stdout, done.stderr))
        return Result(args, done.returncode, out, err)

    def many(self, calls: list[tuple[str, ...]], workers: int = 4) -> list[Result]:
        """Run independent commands a few at a time; results in order."""
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda args: self(*args), calls))

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.code == 0, str(result)
        assert "Traceback" not in result.err, str(result)
        return result

    def start(self, *args: str, stdin: bool = False) -> Background:
        process = subprocess.Popen(
            ledgersync_command(*args),
            env=self.env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        background = Background(process)
        self.started.append(background)
        return background

    def close(self) -> None:
        for background in self.started:
            background.kill()

    def device(self, name: str = "alice") -> str:
        ProfileStore(self.home).create(name)
        return f"software:{name}"

    def activate_pair(self, server_url: str, device: str = "alice") -> None:
        """laptop and phone activated with ``device`` in process (fast set-up), with an ETH
        account named "Main"."""
        store = InstanceStore(self.home)
        store.create("laptop", server_url)
        store.create("phone", server_url, "My phone")
        identity = ProfileStore(self.home).load(device).identity()

        async def activate() -> None:
            software = SoftwareDevice(identity, approver=approve_all)
            async with Wallet(store, "laptop") as laptop, Wallet(store, "phone") as phone:
                await actions.add_account(laptop, ETH, name="Main", sync=False)
                await laptop.activate(software)
                await phone.activate(software)

        asyncio.run(activate())

    def record(self, instance: str) -> dict[str, Any]:
        path = self.home / "instances" / instance / "instance.json"
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded


def one_error_line(result: Result, code: int, *fragments: str) -> None:
    """``result`` failed with ``code``, one ``Error:`` line naming ``fragments``, no trace."""
    assert result.code == code, str(result)
    assert "Traceback" not in result.err and "Traceback" not in result.out, str(result)
    errors = [line for line in result.error_lines() if line.startswith("Error:")]
    assert len(errors) == 1, str(result)
    assert all(fragment in errors[0] for fragment in fragments), str(result)
