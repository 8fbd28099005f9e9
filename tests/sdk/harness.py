"""End-to-end harness: the real ``ledgersync`` server, software devices, and "instances"
(what one Ledger Live install holds: an SDK, its credentials, its trustchain).

The server is the server tests' :class:`RunningServer`: uvicorn in a thread, real HTTP and
websockets on 127.0.0.1 and an ephemeral port, a SQLite file in the test's temporary
directory, and a manual clock the test moves forward (tokens and challenges expire without
sleeping).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from ledgersync.device.approval import ApprovalKind, ApprovalRequest
from ledgersync.device.client import ApduDevice
from ledgersync.device.emulator import Emulator
from ledgersync.device.identity import DeviceIdentity, generate_mnemonic
from ledgersync.device.interface import Device
from ledgersync.device.software import SoftwareDevice
from ledgersync.device.transport import InProcessTransport
from ledgersync.sdk.credentials import MemberCredentials, Trustchain
from ledgersync.sdk.trustchain import TrustchainSDK

from ..server.conftest import server_config
from ..server.harness import ManualClock, RunningServer


def move_past(server: RunningServer, unix_time: float) -> None:
    """Move the server's clock just past ``unix_time`` (for example a token's ``exp``)."""
    server.clock.advance(max(0.0, unix_time - server.clock()) + 1)


@contextmanager
def running_server(directory: Path, **changes: Any) -> Iterator[RunningServer]:
    """The real server (the server tests' harness) on SQLite, with a manual clock."""
    config = server_config(f"sqlite:///{directory / 'ledgersync.sqlite'}", directory, **changes)
    server = RunningServer(config, ManualClock()).start()
    try:
        yield server
    finally:
        server.stop()


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
    """A software device (the app's logic called directly) from a BIP39 phrase."""
    approvals = Approvals()
    device = SoftwareDevice.from_mnemonic(phrase or generate_mnemonic(), approver=approvals)
    return device, approvals


def apdu_device(phrase: str | None = None) -> tuple[Device, Approvals]:
    """The device as a hardware wallet is driven: APDUs to the emulated Ledger Sync app."""
    approvals = Approvals()
    identity = DeviceIdentity.from_mnemonic(phrase or generate_mnemonic())
    emulator = Emulator(identity, approver=approvals)
    return ApduDevice(InProcessTransport(emulator)), approvals


DEVICE_KINDS: dict[str, Callable[..., tuple[Device, Approvals]]] = {
    "software": software_device,
    "apdu": apdu_device,
}


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
