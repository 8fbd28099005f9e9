"""Devices for tests, of each kind: the software device (the app's logic called directly)
and the APDU client driving the emulated Ledger Sync app, as a hardware wallet is driven.

* :data:`DEVICE_KINDS`: ``"software"`` and ``"apdu"``, each ``make(phrase, approver=…,
  random=…, passphrase=…)``; tests parametrized over them run once per kind;
* :class:`Approvals`: the user in front of the device, recording what it was asked;
* :func:`software_device` / :func:`apdu_device`: a device of that kind on a fresh (or given)
  seed with its :class:`Approvals`;
* :class:`KeyStream` and :class:`Scripted`: randomness a test controls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol, TypeVar

from ledgersync.device.approval import ApprovalKind, ApprovalRequest, Approver, approve_all
from ledgersync.device.client import ApduDevice
from ledgersync.device.emulator import Emulator
from ledgersync.device.identity import DeviceIdentity, generate_mnemonic
from ledgersync.device.interface import Device
from ledgersync.device.software import SoftwareDevice
from ledgersync.device.transport import InProcessTransport
from ledgersync.protocol.crypto import Random

#: A valid phrase other than Speculos's, for "wrong seed" (BIP39 test vector: 11 x abandon).
OTHER_PHRASE = " ".join(["abandon"] * 11 + ["about"])

DeviceT = TypeVar("DeviceT", bound=Device, covariant=True)


class DeviceMaker(Protocol[DeviceT]):
    def __call__(
        self,
        phrase: str,
        approver: Approver = ...,
        random: Random | None = ...,
        passphrase: str = ...,
    ) -> DeviceT: ...


class Approvals:
    """The user in front of a device: records every request it was asked to approve, and
    answers ``answer`` (a bool, or a function of the request), except for the kinds in
    :attr:`refuse`.

    ``on(kind, action)`` runs ``action`` once, when the next prompt of that kind shows: a
    precise point in the middle of a flow (for example to move the server's clock).
    """

    def __init__(self, answer: bool | Callable[[ApprovalRequest], bool] = True) -> None:
        self.answer = answer
        self.refuse: set[ApprovalKind] = set()
        self.requests: list[ApprovalRequest] = []
        self._pending: dict[ApprovalKind, Callable[[], None]] = {}

    def on(self, kind: ApprovalKind, action: Callable[[], None]) -> None:
        self._pending[kind] = action

    def __call__(self, request: ApprovalRequest) -> bool:
        self.requests.append(request)
        action = self._pending.pop(request.kind, None)
        if action is not None:
            action()
        if request.kind in self.refuse:
            return False
        return self.answer(request) if callable(self.answer) else self.answer

    def count(self, kind: ApprovalKind) -> int:
        return sum(1 for request in self.requests if request.kind is kind)


def software_device_from(
    phrase: str,
    approver: Approver = approve_all,
    random: Random | None = None,
    passphrase: str = "",
) -> SoftwareDevice:
    """The software device of a BIP39 phrase."""
    return SoftwareDevice.from_mnemonic(phrase, passphrase, approver=approver, **_chosen(random))


def apdu_device_from(
    phrase: str,
    approver: Approver = approve_all,
    random: Random | None = None,
    passphrase: str = "",
) -> ApduDevice:
    """The APDU client driving the emulator of a BIP39 phrase, through the in-process port."""
    identity = DeviceIdentity.from_mnemonic(phrase, passphrase)
    return ApduDevice(InProcessTransport(Emulator(identity, approver=approver, **_chosen(random))))


def _chosen(random: Random | None) -> dict[str, Random]:
    """The ``random`` option of a device: its own default unless a test chose one."""
    return {} if random is None else {"random": random}


DEVICE_KINDS: dict[str, DeviceMaker[Device]] = {
    "software": software_device_from,
    "apdu": apdu_device_from,
}

#: ``make_device(phrase=None)`` → (device, approvals), for one device kind.
DeviceFactory = Callable[..., tuple[Device, Approvals]]


def with_approvals(
    make: DeviceMaker[DeviceT], phrase: str | None = None
) -> tuple[DeviceT, Approvals]:
    """A device made by ``make`` on ``phrase`` (a fresh seed if None), and its user."""
    approvals = Approvals()
    return make(phrase or generate_mnemonic(), approvals), approvals


def software_device(phrase: str | None = None) -> tuple[SoftwareDevice, Approvals]:
    return with_approvals(software_device_from, phrase)


def apdu_device(phrase: str | None = None) -> tuple[ApduDevice, Approvals]:
    return with_approvals(apdu_device_from, phrase)


class KeyStream:
    """Deterministic randomness: one continuous SHA-256 counter stream, read in any sizes."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0
        self._buffer = b""

    def __call__(self, size: int) -> bytes:
        while len(self._buffer) < size:
            block = self._counter.to_bytes(8, "big") + self._seed
            self._buffer += hashlib.sha256(block).digest()
            self._counter += 1
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken


class Scripted:
    """Randomness that hands out exactly these byte strings, in order, and fails otherwise."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    def __call__(self, size: int) -> bytes:
        assert self._chunks, "more randomness asked for than scripted"
        chunk = self._chunks.pop(0)
        assert len(chunk) == size, f"asked for {size} bytes, scripted {len(chunk)}"
        return chunk
