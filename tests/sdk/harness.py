"""End-to-end harness: the real ``ledgersync`` server on an ephemeral port, software devices,
and "instances" (what one Ledger Live install holds: an SDK, its credentials, its trustchain).

The server runs in the test's event loop under uvicorn, with real HTTP and websockets on
127.0.0.1, a SQLite file in the test's temporary directory, and a clock the test can move
forward (tokens and challenges expire without sleeping).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import uvicorn

from ledgersync.device.approval import ApprovalKind, ApprovalRequest
from ledgersync.device.identity import generate_mnemonic
from ledgersync.device.software import SoftwareDevice
from ledgersync.sdk.credentials import MemberCredentials, Trustchain
from ledgersync.sdk.trustchain import TrustchainSDK
from ledgersync.server.app import create_app
from ledgersync.server.config import ServerConfig
from ledgersync.server.run import uvicorn_config


class Clock:
    """The server's clock: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def move_past(self, unix_time: float) -> None:
        """Move forward until ``unix_time`` has passed (for example a token's ``exp``)."""
        self.advance(max(0.0, unix_time - self()) + 1)


@dataclass
class LiveServer:
    url: str
    clock: Clock
    config: ServerConfig

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1)


@asynccontextmanager
async def live_server(directory: Path, **settings: Any) -> AsyncIterator[LiveServer]:
    """Serve a fresh database until the block exits."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "database": f"sqlite:///{directory / 'ledgersync.sqlite'}",
        "public_url": url,
        "key_file": directory / "server-key.json",
        "rate_limit_per_minute": 100_000,
        "rate_limit_burst": 100_000,
        "metrics": False,
        "log_level": "warning",
    }
    values.update(settings)
    config = ServerConfig(**values)
    clock = Clock()
    app = create_app(config, clock=clock)
    server = uvicorn.Server(uvicorn_config(config, app))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await _until_started(server, serving)
        yield LiveServer(url, clock, config)
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def _until_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    """Wait for uvicorn's startup to complete (or fail): each loop iteration yields to it."""
    deadline = time.monotonic() + 10
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the server stopped during startup")
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start within 10 s")
        await asyncio.sleep(0.01)  # polling a condition under a deadline


class Approvals:
    """The user in front of a software device: approves everything unless told to refuse.

    ``on(kind, action)`` runs ``action`` once, when the next prompt of that kind shows: a
    precise point in the middle of a flow (for example to move the server's clock).
    """

    def __init__(self) -> None:
        self.refuse: set[ApprovalKind] = set()
        self.seen: list[ApprovalRequest] = []
        self._pending: dict[ApprovalKind, Callable[[], None]] = {}

    def on(self, kind: ApprovalKind, action: Callable[[], None]) -> None:
        self._pending[kind] = action

    def __call__(self, request: ApprovalRequest) -> bool:
        self.seen.append(request)
        action = self._pending.pop(request.kind, None)
        if action is not None:
            action()
        return request.kind not in self.refuse

    def count(self, kind: ApprovalKind) -> int:
        return sum(1 for request in self.seen if request.kind is kind)


def software_device(phrase: str | None = None) -> tuple[SoftwareDevice, Approvals]:
    approvals = Approvals()
    device = SoftwareDevice.from_mnemonic(phrase or generate_mnemonic(), approver=approvals)
    return device, approvals


@dataclass
class Instance:
    """One Ledger Live install: its SDK, its member key, and the trustchain it knows."""

    sdk: TrustchainSDK
    credentials: MemberCredentials
    trustchain: Trustchain | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.sdk.name

    @property
    def tc(self) -> Trustchain:
        assert self.trustchain is not None, f"{self.name} has no trustchain"
        return self.trustchain


def token_claims(access_token: str) -> dict[str, Any]:
    """Read a token's claims (the SDK never does; tests use ``exp``)."""
    claims: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return claims
