"""Run ``ledgersync`` with a terminal (a pseudo-terminal) on its standard input.

``CliRunner`` never gives a command a terminal, so what a command does when a person sits at
it (ask, or print its usage instead of waiting for input) is tested in a real process.
"""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from ledgersync.testing import ledgersync_command

#: Long enough for a loaded machine; a command waiting on its terminal fails the test here.
TIMEOUT = 30


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def run_on_a_terminal(
    *arguments: str, typed: str = "", env: Mapping[str, str] | None = None
) -> Finished:
    """Run ``ledgersync ARGUMENTS`` with a terminal as standard input on which ``typed`` was
    typed (standard output and error are pipes)."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            ledgersync_command(*arguments),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            text=True,
        )
        os.close(terminal)
        terminal = -1
        if typed:
            os.write(controller, typed.encode())
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"`ledgersync {' '.join(arguments)}` still waits on its terminal after "
                f"{TIMEOUT} s; it printed: {stdout!r} {stderr!r}"
            ) from None
        return Finished(process.returncode, stdout, stderr)
    finally:
        for descriptor in (controller, terminal):
            if descriptor >= 0:
                with contextlib.suppress(OSError):
                    os.close(descriptor)
