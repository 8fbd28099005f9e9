"""The listener under ``ledgersync serve``: every waiting connection accepted at once, bounded,
and a pause (not a busy loop) when the process runs out of descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ledgersync.server import accept
from ledgersync.server.accept import Listener

DEADLINE = 10


class Counted(asyncio.Protocol):
    """Counts the connections made; ``all_made`` once ``expected`` were."""

    made = 0
    expected = 0
    all_made: asyncio.Event

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        type(self).made += 1
        if type(self).made >= type(self).expected:
            type(self).all_made.set()


@pytest.fixture
def counted() -> Iterator[type[Counted]]:
    class Fresh(Counted):
        made = 0
        all_made = asyncio.Event()

    yield Fresh


def bound() -> socket.socket:
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    return listening


def connect(listening: socket.socket, count: int) -> list[socket.socket]:
    """``count`` clients, connected by the kernel (waiting to be accepted)."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(listening.getsockname(), timeout=DEADLINE)
        clients.append(client)
    return clients


@contextlib.asynccontextmanager
async def started(listener: Listener, real: socket.socket, clients: int) -> AsyncIterator[Listener]:
    """``listener`` started on ``real``, with ``clients`` connections waiting; all closed after."""
    listener.start()
    connected = connect(real, clients)
    try:
        yield listener
    finally:
        listener.close()
        await listener.wait_closed()
        for client in connected:
            client.close()
        real.close()


async def test_every_waiting_connection_is_accepted_in_one_readiness(
    counted: type[Counted],
) -> None:
    listening = bound()
    async with started(Listener(listening, counted, backlog=64), listening, 20) as listener:
        listener.accept_waiting()  # what one readiness of the socket does
        assert listener.accepted == 20
        counted.expected = 20
        await asyncio.wait_for(counted.all_made.wait(), DEADLINE)  # each has its protocol


async def test_a_readiness_accepts_at_most_a_batch(counted: type[Counted]) -> None:
    listening = bound()
    batched = Listener(listening, counted, backlog=64, batch=8)
    async with started(batched, listening, 20) as listener:
        listener.accept_waiting()
        assert listener.accepted == 8
        # the loop sees the socket still readable and takes the rest in later readinesses
        counted.expected = 20
        await asyncio.wait_for(counted.all_made.wait(), DEADLINE)
        assert listener.accepted == 20


class OutOfDescriptors:
    """A listening socket whose first ``accept`` fails as a process out of descriptors does;
    the later ones are the real socket's."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.failed = False
        self.accepted_after_failure = asyncio.Event()

    def accept(self) -> tuple[socket.socket, Any]:
        if not self.failed:
            self.failed = True
            raise OSError(errno.EMFILE, "Too many open files")
        connection, address = self.real.accept()
        self.accepted_after_failure.set()
        return connection, address

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_running_out_of_descriptors_pauses_accepting_then_resumes(
    counted: type[Counted], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(accept, "RETRY_AFTER", 0.05)
    real = bound()
    flaky = OutOfDescriptors(real)
    failing = Listener(flaky, counted, backlog=8)  # type: ignore[arg-type]
    async with started(failing, real, 1) as listener:
        listener.accept_waiting()
        assert flaky.failed and listener.accepted == 0 and listener.paused
        assert "cannot accept connections for now (Too many open files)" in caplog.text
        # the connection waits in the kernel; once the pause is over, the loop takes it
        await asyncio.wait_for(flaky.accepted_after_failure.wait(), DEADLINE)
        counted.expected = 1
        await asyncio.wait_for(counted.all_made.wait(), DEADLINE)
        assert listener.accepted == 1 and not listener.paused


async def test_closing_during_a_pause_cancels_the_retry(counted: type[Counted]) -> None:
    real = bound()
    failing = Listener(OutOfDescriptors(real), counted, backlog=8)  # type: ignore[arg-type]
    async with started(failing, real, 1) as listener:
        listener.accept_waiting()
        assert listener.paused
        listener.close()
        listener.close()  # idempotent
        assert not listener.paused
