"""Driving Ledger's JavaScript SDK from pytest: one Node process per JS instance.

``harness/instance.cjs`` reads JSON requests on stdin and answers JSON lines on stdout (see its
header). :class:`JsInstance` is the Python end: synchronous calls with deadlines, long-running
calls (QR pairing) as futures, and unsolicited events waited on with deadlines — never sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
HARNESS = HERE / "harness" / "instance.cjs"
INSTALL = HERE / "install.sh"

NODE_HELP = (
    "Node.js >= 18 with npm is required for the interoperability tests (tests/interop), which "
    "run Ledger's official JavaScript SDK against ledgersync. Install it, e.g. "
    "'apt-get install nodejs npm' (Debian/Ubuntu), 'brew install node' (macOS) or from "
    "https://nodejs.org/, then run 'make test' again."
)

DEFAULT_TIMEOUT = 60.0


class JsError(Exception):
    """An error thrown by the JS side; ``name`` is the JS error class name (Ledger's names)."""

    def __init__(self, name: str, message: str, stack: str = "", status: int | None = None):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.stack = stack
        self.status = status


class HarnessDied(RuntimeError):
    pass


def ensure_node_packages() -> None:
    """Fail (never skip) without Node; install Ledger's packages (instant when installed)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError(NODE_HELP)
    done = subprocess.run(
        ["bash", str(INSTALL)], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"tests/interop/install.sh failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
        )


class JsInstance:
    """A Node process running the harness: one Ledger Live-like instance."""

    def __init__(self, label: str = "js") -> None:
        self.label = label
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (kept open for the process)
            mode="w+", prefix=f"interop-{label}-", suffix=".log", delete=False
        )
        self._process = subprocess.Popen(
            ["node", str(HARNESS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=HERE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )
        self._lock = threading.Condition()
        self._next_id = 1
        self._pending: dict[int, Future[Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, name=f"js-{label}", daemon=True)
        self._reader.start()
        self.ready = self.wait_event("ready", timeout=30)

    # -- plumbing -----------------------------------------------------------------------------

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._lock:
                if "id" in message and message["id"] in self._pending:
                    future = self._pending.pop(message["id"])
                    if message.get("ok"):
                        future.set_result(message.get("result"))
                    else:
                        error = message.get("error") or {}
                        future.set_exception(
                            JsError(
                                error.get("name", "Error"),
                                error.get("message", ""),
                                error.get("stack", ""),
                                error.get("status"),
                            )
                        )
                else:
                    self._events.append(message)
                self._lock.notify_all()
        with self._lock:
            self._closed = True
            died = HarnessDied(f"the JS harness {self.label!r} exited\n{self.stderr_tail()}")
            for future in self._pending.values():
                future.set_exception(died)
            self._pending.clear()
            self._lock.notify_all()

    def stderr_tail(self, size: int = 4000) -> str:
        try:
            return Path(self._log.name).read_text()[-size:]
        except OSError:
            return ""

    def start(self, op: str, **args: Any) -> Future[Any]:
        """Send a request; its future resolves with the result or raises :class:`JsError`."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise HarnessDied(f"the JS harness {self.label!r} has exited")
            request_id = self._next_id
            self._next_id += 1
            self._pending[request_id] = future
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"id": request_id, "op": op, "args": args}) + "\n")
        self._process.stdin.flush()
        return future

    def call(self, op: str, timeout: float = DEFAULT_TIMEOUT, **args: Any) -> Any:
        future = self.start(op, **args)
        try:
            return future.result(timeout)
        except TimeoutError:
            raise TimeoutError(
                f"JS {self.label}.{op} did not answer in {timeout} s\n{self.stderr_tail()}"
            ) from None

    def wait_event(
        self,
        name: str,
        timeout: float = DEFAULT_TIMEOUT,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The first not yet consumed event called ``name`` (and matching ``predicate``)."""
        found: list[dict[str, Any]] = []

        def take() -> bool:
            for index, event in enumerate(self._events):
                if event.get("event") == name and (predicate is None or predicate(event)):
                    found.append(self._events.pop(index))
                    return True
            return self._closed

        with self._lock:
            self._lock.wait_for(take, timeout)
            if found:
                return found[0]
            state = "exited" if self._closed else f"no {name!r} event in {timeout} s"
            raise TimeoutError(
                f"JS {self.label}: {state} "
                f"(events: {[e.get('event') for e in self._events]})\n{self.stderr_tail()}"
            )

    def serve_apdus(
        self,
        future: Future[Any],
        exchange: Callable[[bytes], bytes],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Any:
        """Answer the APDUs the JS side sends over its bridge with ``exchange`` until
        ``future`` completes; returns its result. The count is kept in ``apdu_count``."""
        deadline = time.monotonic() + timeout
        self.apdu_count = 0
        while True:
            with self._lock:
                self._lock.wait_for(
                    lambda: (
                        future.done()
                        or self._closed
                        or any(e.get("event") == "apdu" for e in self._events)
                    ),
                    max(0.0, deadline - time.monotonic()),
                )
                index = next(
                    (i for i, e in enumerate(self._events) if e.get("event") == "apdu"), None
                )
                event = self._events.pop(index) if index is not None else None
            if event is None:
                if future.done():
                    return future.result()
                raise TimeoutError(f"JS {self.label}: APDU exchange stalled\n{self.stderr_tail()}")
            response = exchange(bytes.fromhex(event["apdu"]))
            self.apdu_count += 1
            self.call("protocol.apduResponse", seq=event["seq"], response=response.hex())

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [event for event in self._events if event.get("event") == name]

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            with contextlib.suppress(OSError):
                self._process.stdin.close()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._reader.join(10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> JsInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shown_qr_url(host: JsInstance, timeout: float = DEFAULT_TIMEOUT) -> str:
    """The QR code a JS host shows, scanned at once.

    Ledger's host displays the code right after creating its websocket, before it is open, so
    the candidate may reach the relay first: the relay holds its frames for the host.
    """
    url: str = host.wait_event("qrUrl", timeout)["url"]
    return url
