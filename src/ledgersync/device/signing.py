"""The host's side of signing: replay the context, then have the device fill and sign.

This is Ledger Live's ``ApduDevice.sign`` algorithm (docs/protocol.md, "Replaying a stream"),
written once against a :class:`SigningSession`: the software device's session calls the app
directly, the APDU client's session speaks APDUs. Either way:

1. replay every block of the plan's context, header, commands (asking for trusted
   properties) and signature;
2. keep the trusted-member token the device hands out for each member it learns about
   (the issuer of a foreign Seed, an added member, a PublishKey recipient), and give the
   right one back (SET_TRUSTED_MEMBER) before a header whose issuer is not the member the
   device trusts at that moment: the device accepts a block only from itself or from that
   one member;
3. send the new block's header with the issuer placeholder, its command templates, and
   finalize.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from ..protocol.apdu import ISSUER_PLACEHOLDER, BlockHeader
from ..protocol.block import Block
from ..protocol.commands import AddMember, Command, PublishKey
from ..protocol.templates import CommandTemplate
from ..protocol.tree import StreamTree
from .requests import BlockPlan, check_signed_block

Token = TypeVar("Token")


class SigningSession(Protocol, Generic[Token]):
    """One INIT session with a device; ``Token`` is its opaque trusted-member handle."""

    async def parse_header(self, header: BlockHeader) -> None: ...

    async def parse_command(self, command: Command) -> Token | None: ...

    async def parse_signature(self, signature: bytes) -> None: ...

    async def set_trusted_member(self, token: Token) -> None: ...

    async def sign_header(self, header: BlockHeader) -> None: ...

    async def sign_command(self, template: CommandTemplate) -> None: ...

    async def finalize(self) -> Block:
        """Sign, and assemble the block as the device filled it in."""
        ...


def header_of(block: Block) -> BlockHeader:
    return BlockHeader(block.parent, block.issuer, len(block.commands), block.version)


def _token_owner(command: Command, issuer: bytes) -> bytes:
    """Whom a trusted member output by the device stands for.

    See docs/protocol.md, "Replaying a stream": the host files each blob under that member.
    """
    if isinstance(command, AddMember):
        return command.public_key
    if isinstance(command, PublishKey):
        return command.recipient
    return issuer  # a Seed issued by someone else


async def sign_plan(
    session: SigningSession[Token], plan: BlockPlan, tree: StreamTree | None
) -> Block:
    """Replay, sign and check; the block is one the trustchain accepts."""
    tokens: dict[bytes, Token] = {}
    trusted: bytes | None = None
    for encoded in plan.context:
        block = encoded.block
        token = tokens.get(block.issuer)
        if token is not None and block.issuer != trusted:
            await session.set_trusted_member(token)
            trusted = block.issuer
        await session.parse_header(header_of(block))
        for command in block.commands:
            output = await session.parse_command(command)
            if output is not None:
                trusted = _token_owner(command, block.issuer)
                tokens[trusted] = output
        await session.parse_signature(block.signature)
    await session.sign_header(BlockHeader(plan.parent, ISSUER_PLACEHOLDER, len(plan.templates)))
    for template in plan.templates:
        await session.sign_command(template)
    signed = await session.finalize()
    check_signed_block(plan, signed, tree)
    return signed
