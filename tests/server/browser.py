"""Real headless Chromium for tests, driven through chromedriver's W3C WebDriver HTTP API.

Debian's ``chromium`` and ``chromium-driver`` packages (``make system-deps`` installs them).
:class:`Browser` starts ``chromedriver`` on a free loopback port, waits until its ``/status``
says it is ready, opens one session and closes both on exit. Waiting for the page is done by
the browser itself (an implicit wait on element look-ups), not by sleeping.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from ledgersync.testing import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: Flags that work here: as root, without network, without a desktop session.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

#: The W3C name of an element reference in WebDriver answers.
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"

START_TIMEOUT = 20.0
#: How long an element look-up waits for the element to appear (the page's script to run).
FIND_TIMEOUT_MS = 10_000


class WebDriverError(AssertionError):
    pass


class Browser:
    def __init__(self) -> None:
        missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
        if missing:  # not a skip: the project installs them
            raise WebDriverError(f"{', '.join(missing)} missing: run `make system-deps`")
        self.profile = tempfile.TemporaryDirectory(prefix="ledgersync-chromium-")
        self.port = free_port()
        self.driver_log = Path(self.profile.name) / "chromedriver.log"
        self.driver: subprocess.Popen[bytes] | None = None
        self.session = ""

    def __enter__(self) -> Browser:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        with self.driver_log.open("wb") as log:
            self.driver = subprocess.Popen(
                [str(CHROMEDRIVER), f"--port={self.port}", "--log-level=WARNING"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._driver_ready():
            if self.driver.poll() is not None or time.monotonic() > deadline:
                raise WebDriverError(f"chromedriver did not start: {self.driver_log_tail()}")
            time.sleep(0.05)  # polling chromedriver's /status for readiness, with a deadline
        user_data = Path(self.profile.name) / "profile"
        user_data.mkdir()
        options = {
            "binary": str(CHROMIUM),
            "args": [*CHROMIUM_FLAGS, f"--user-data-dir={user_data}"],
        }
        answer = self._call(
            "POST",
            "/session",
            {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}},
        )
        self.session = answer["sessionId"]
        self.command("POST", "/timeouts", {"implicit": FIND_TIMEOUT_MS, "pageLoad": 20_000})

    def _driver_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=2) as r:
                return bool(json.load(r)["value"]["ready"])
        except (OSError, ValueError, KeyError):
            return False

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as error:
            answer = error.read()[:2000].decode(errors="replace")
            raise WebDriverError(
                f"{method} {path}: {error.code} {answer}\nchromedriver: {self.driver_log_tail()}"
            ) from None

    def driver_log_tail(self) -> str:
        try:
            return self.driver_log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        """Navigate and wait until the page has loaded (its deferred scripts have run)."""
        self.command("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        """The element matching ``css``, waiting up to :data:`FIND_TIMEOUT_MS` for it."""
        answer = self.command("POST", "/element", {"using": "css selector", "value": css})
        return str(answer[ELEMENT_KEY])

    def text(self, css: str) -> str:
        return str(self.command("GET", f"/element/{self.find(css)}/text"))

    def type(self, css: str, text: str) -> None:
        self.command("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self.command("POST", f"/element/{self.find(css)}/click", {})

    def script(self, source: str, *args: Any) -> Any:
        return self.command("POST", "/execute/sync", {"script": source, "args": list(args)})

    def close(self) -> None:
        if self.session:
            # If the browser is gone already, chromedriver is stopped below all the same.
            with contextlib.suppress(WebDriverError, OSError):
                self.command("DELETE", "")
            self.session = ""
        if self.driver is not None:
            self.driver.terminate()
            try:
                self.driver.wait(10)
            except subprocess.TimeoutExpired:
                self.driver.kill()
                self.driver.wait(10)
            self.driver = None
        self.profile.cleanup()
