"""A real ``ledgersync serve`` for the interop suite: the package's own test server
(:class:`ledgersync.testing.LocalServer`, a subprocess on a free local port with its own
SQLite database and key file)."""

from __future__ import annotations

from ledgersync.testing import LocalServer as Server

__all__ = ["Server"]
