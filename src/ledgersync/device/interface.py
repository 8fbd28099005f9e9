"""The one Device interface the SDK uses for every device operation.

Implementations: :class:`~ledgersync.device.software.SoftwareDevice` (a BIP39 phrase in
this process) and :class:`~ledgersync.device.client.ApduDevice` (the Ledger Sync app over a
transport: the in-process emulator, Speculos, or a real device over USB).

**Asyncio.** Every operation is a coroutine, because the SDK is asyncio and a hardware
device answers only after its user presses a button: the SDK awaits the device like any
other I/O. Blocking transports (USB through ``ledgercomm``) run in a worker thread.

**Errors.** Operations raise :class:`~ledgersync.device.errors.DeviceError` subclasses and
nothing else for device trouble: :class:`UserRefusedError` when the user says no,
:class:`WrongSeedError` when the trustchain belongs to another seed ("TrustchainNotAllowed"),
:class:`RequestError` when the request does not fit the tree, :class:`DeviceLockedError`,
:class:`AppNotOpenError`, :class:`DeviceNotFoundError` and :class:`TransportError` for
hardware trouble.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from ..protocol.block import Block
from ..protocol.challenge import Challenge, SeedIdResponse
from ..protocol.keys import StreamKey
from ..protocol.paths import Path
from ..protocol.tree import StreamTree
from .requests import BlockRequest


class Device(ABC):
    @abstractmethod
    async def seed_id_public_key(self) -> bytes:
        """The device's member key (m/99'/99', 33 bytes compressed).

        A hardware device reveals it only in a signed answer: unless an earlier operation
        already did, this asks the user to approve a login.
        """

    @abstractmethod
    async def sign_challenge(self, challenge: Challenge) -> SeedIdResponse:
        """Log in: sign the backend's challenge, with the app's attestation (user approval).

        Raises :class:`ChallengeRejectedError` for a challenge the app refuses and
        :class:`UserRefusedError` when the user refuses.
        """

    @abstractmethod
    async def sign_block(self, request: BlockRequest, tree: StreamTree | None) -> Block:
        """Sign one block of ``request`` against ``tree`` (None before the trustchain exists).

        The device replays what it must of the tree, fills in the keys it generates and
        signs. AddMember and CloseStream need the user's approval. The block returned
        verifies and resolves with the tree; it is not published.
        """

    @abstractmethod
    async def read_key(self, tree: StreamTree, path: Path) -> StreamKey:
        """The xpriv of the stream at ``path`` as this device can read it.

        Raises :class:`WrongSeedError` when the tree holds no key for this device and
        :class:`UnsupportedOperationError` on hardware, which never exports a key.
        """

    async def close(self) -> None:  # noqa: B027 - most devices hold nothing to release
        """Release the connection, if any."""

    async def __aenter__(self) -> Device:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
