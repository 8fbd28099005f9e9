"""Fixtures of the device tests: devices of every kind, randomness (``vectors``: ../conftest)."""

import hashlib

import pytest

from ledgersync.device import (
    ApduDevice,
    DeviceIdentity,
    Emulator,
    InProcessTransport,
    SoftwareDevice,
    approve_all,
)
from ledgersync.protocol.tree import resolve_tree

h = bytes.fromhex


@pytest.fixture(scope="session")
def speculos_phrase(vectors):
    return vectors["derived_speculos_seed_id_key"]["mnemonic"]


#: A valid phrase other than Speculos's, for "wrong seed" (BIP39 test vector: 11 x abandon).
OTHER_PHRASE = " ".join(["abandon"] * 11 + ["about"])


class KeyStream:
    """Deterministic randomness: one continuous SHA-256 counter stream, read in any sizes."""

    def __init__(self, seed):
        self._seed = seed
        self._counter = 0
        self._buffer = b""

    def __call__(self, size):
        while len(self._buffer) < size:
            block = self._counter.to_bytes(8, "big") + self._seed
            self._buffer += hashlib.sha256(block).digest()
            self._counter += 1
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken


class Scripted:
    """Randomness that hands out exactly these byte strings, in order, and fails otherwise."""

    def __init__(self, *chunks):
        self._chunks = list(chunks)

    def __call__(self, size):
        assert self._chunks, "more randomness asked for than scripted"
        chunk = self._chunks.pop(0)
        assert len(chunk) == size, f"asked for {size} bytes, scripted {len(chunk)}"
        return chunk


class Approvals:
    """An approver that records what it was asked and answers from a policy."""

    def __init__(self, answer=True):
        self.answer = answer
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        return self.answer(request) if callable(self.answer) else self.answer


def direct_device(phrase, approver=approve_all, random=None, passphrase=""):
    kwargs = {} if random is None else {"random": random}
    return SoftwareDevice.from_mnemonic(phrase, passphrase, approver=approver, **kwargs)


def apdu_device(phrase, approver=approve_all, random=None, passphrase=""):
    """The APDU client driving the emulator of the same phrase, through the in-process port."""
    kwargs = {} if random is None else {"random": random}
    emulator = Emulator(
        DeviceIdentity.from_mnemonic(phrase, passphrase), approver=approver, **kwargs
    )
    return ApduDevice(InProcessTransport(emulator))


DEVICE_KINDS = {"direct": direct_device, "apdu": apdu_device}


@pytest.fixture(params=sorted(DEVICE_KINDS))
def make_device(request):
    """Builds a device of each kind in turn: the software device and the APDU path."""
    return DEVICE_KINDS[request.param]


class Chain:
    """A trustchain being built: the streams' bytes, and the tree they resolve to."""

    def __init__(self):
        self.streams = {}

    def add(self, path, block):
        self.streams[path] = self.streams.get(path, b"") + block.encode()
        return self

    @property
    def tree(self):
        return resolve_tree(list(self.streams.values())) if self.streams else None
