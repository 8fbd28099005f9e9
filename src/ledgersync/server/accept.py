"""Accepting connections: every one that is waiting, each time the listening socket is ready.

uvloop's server accepts one connection each time the listening socket is reported readable
(libuv gave up accepting in a loop in 1.45). While the event loop serves other clients, one
of its iterations takes several milliseconds (one request per active connection), so
connections that arrive together wait one iteration each: measured with 64 connections
opened at once on a server busy with others, the last one was accepted about 250 ms after it
connected and answered up to 400 ms after, against under 3 ms and 30 ms when every waiting
connection is accepted at once (docs/benchmarks.md, "The tail of p99"). Clients
reconnecting together after a restart meet the same queue.

:class:`Listener` takes the place of the loop's server for a socket the server bound itself:
on each readiness it accepts up to :data:`ACCEPT_BATCH` connections and hands each to the
loop as an accepted socket, with the protocol the server gives it. When the process runs out
of file descriptors or memory it stops accepting for :data:`RETRY_AFTER` seconds (as asyncio's
own server does), rather than spinning on a socket that stays readable.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger("ledgersync.server")

#: Connections accepted per readiness of the listening socket at most (the rest wait for
#: the next one, so that a flood cannot hold the loop).
ACCEPT_BATCH = 128
#: Seconds without accepting after the process ran out of descriptors or memory.
RETRY_AFTER = 1.0
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Listener:
    """Serve a listening socket: ``close()`` stops accepting, ``wait_closed()`` waits for
    the connections being set up (the same calls as the loop's server, which uvicorn makes
    at shutdown)."""

    def __init__(
        self,
        listening: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        *,
        backlog: int,
        batch: int = ACCEPT_BATCH,
    ) -> None:
        self.sockets = [listening]
        self._socket = listening
        self._factory = protocol_factory
        self._backlog = backlog
        self._batch = batch
        self._loop = asyncio.get_running_loop()
        self._setting_up: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        #: Accepted connections (for tests and monitoring).
        self.accepted = 0

    @property
    def paused(self) -> bool:
        """Not accepting for now (out of descriptors or memory)."""
        return self._retry is not None

    def start(self) -> None:
        self._socket.setblocking(False)
        self._socket.listen(self._backlog)
        self._loop.add_reader(self._socket.fileno(), self.accept_waiting)

    def accept_waiting(self) -> None:
        """Accept the connections waiting (at most ``batch``)."""
        for _ in range(self._batch):
            try:
                connection, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return  # none left
            except ConnectionAbortedError:
                continue  # the client gave up before we took it
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    log.warning(
                        "cannot accept connections for now (%s); trying again in %s s",
                        exc.strerror,
                        RETRY_AFTER,
                    )
                    self._pause()
                else:
                    log.error("accepting a connection failed: %s", exc)
                return
            self.accepted += 1
            self._set_up(connection)

    def _set_up(self, connection: socket.socket) -> None:
        connection.setblocking(False)
        if connection.family in (socket.AF_INET, socket.AF_INET6):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._connect(connection))
        self._setting_up.add(task)
        task.add_done_callback(self._setting_up.discard)

    async def _connect(self, connection: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, connection)
        except OSError as exc:  # the client left meanwhile
            log.debug("an accepted connection closed before it was set up: %s", exc)
            connection.close()

    def _pause(self) -> None:
        self._loop.remove_reader(self._socket.fileno())
        self._retry = self._loop.call_later(RETRY_AFTER, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            self._loop.add_reader(self._socket.fileno(), self.accept_waiting)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        else:
            self._loop.remove_reader(self._socket.fileno())

    async def wait_closed(self) -> None:
        if self._setting_up:
            await asyncio.gather(*self._setting_up, return_exceptions=True)
