"""The software device: the Ledger Sync app's logic, seeded from a BIP39 phrase, in process.

It behaves as a Ledger restored with the same phrase would: the same seed-id key, a random
root key wrapped to itself in the Seed, keys it reads back by unwrapping its own Seed and
Derive. A second software device with the same phrase can therefore operate the same
trustchain, and one with another phrase gets :class:`WrongSeedError`.
"""

from __future__ import annotations

import os

from ..protocol import tree as trees
from ..protocol.apdu import BlockHeader
from ..protocol.block import Block
from ..protocol.challenge import Challenge, SeedIdResponse
from ..protocol.commands import Command
from ..protocol.crypto import Random
from ..protocol.errors import CryptoError
from ..protocol.keys import StreamKey
from ..protocol.paths import Path, format_path
from ..protocol.templates import CommandTemplate
from ..protocol.tree import StreamTree
from ..protocol.trusted import TrustedMember
from .app import LedgerSyncApp
from .approval import Approver
from .errors import WrongSeedError
from .identity import TEST_ATTESTATION_PRIVATE_KEY, DeviceIdentity
from .interface import Device
from .requests import BlockRequest, plan_block
from .signing import sign_plan


class SoftwareDevice(Device):
    def __init__(
        self, identity: DeviceIdentity, *, approver: Approver, random: Random = os.urandom
    ) -> None:
        self._identity = identity
        self._random = random
        self._app = LedgerSyncApp(identity, approver=approver, random=random)

    @classmethod
    def from_mnemonic(
        cls,
        phrase: str,
        passphrase: str = "",
        *,
        approver: Approver,
        attestation_key: bytes = TEST_ATTESTATION_PRIVATE_KEY,
        random: Random = os.urandom,
    ) -> SoftwareDevice:
        identity = DeviceIdentity.from_mnemonic(phrase, passphrase, attestation_key)
        return cls(identity, approver=approver, random=random)

    async def seed_id_public_key(self) -> bytes:
        return self._identity.public_key

    async def sign_challenge(self, challenge: Challenge) -> SeedIdResponse:
        return self._app.get_seed_id(challenge)

    async def sign_block(self, request: BlockRequest, tree: StreamTree | None) -> Block:
        plan = plan_block(request, tree, self._random, self._identity.public_key)
        self._app.open_session()
        return await sign_plan(_DirectSession(self._app), plan, tree)

    async def read_key(self, tree: StreamTree, path: Path) -> StreamKey:
        try:
            return trees.read_key(tree, self._identity.seed_id.private_key, path)
        except CryptoError as exc:
            raise WrongSeedError(
                f"this device holds no key at or above {format_path(path)}: the trustchain "
                "was created with another seed"
            ) from exc


class _DirectSession:
    """A signing session on the app itself: typed values, no APDU, no encryption."""

    def __init__(self, app: LedgerSyncApp) -> None:
        self._app = app
        self._header: BlockHeader | None = None
        self._commands: list[Command] = []

    async def parse_header(self, header: BlockHeader) -> None:
        self._app.parse_header(header)

    async def parse_command(self, command: Command) -> TrustedMember | None:
        return self._app.parse_command(command)

    async def parse_signature(self, signature: bytes) -> None:
        self._app.parse_signature(signature)

    async def set_trusted_member(self, token: TrustedMember) -> None:
        self._app.set_trusted_member(token)

    async def sign_header(self, header: BlockHeader) -> None:
        issuer = self._app.sign_header(header)
        self._header = BlockHeader(header.parent, issuer, header.command_count, header.version)

    async def sign_command(self, template: CommandTemplate) -> None:
        self._commands.append(self._app.sign_command(template).command)

    async def finalize(self) -> Block:
        signature, _ = self._app.finalize()
        assert self._header is not None, "finalize comes after sign_header"
        header = self._header
        return Block(header.parent, header.issuer, tuple(self._commands), signature, header.version)
