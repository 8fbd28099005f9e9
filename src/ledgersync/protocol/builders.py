"""Building signed blocks in software (docs/protocol.md, "Trustchain flows").

A root key (the software device's seed-id key) signs ``[Seed]`` and
``[Derive, AddMember, PublishKey]``; a member key signs ``[AddMember, PublishKey]`` and
``[CloseStream]``. Randomness is injected so that tests can reproduce recorded blocks.
"""

from __future__ import annotations

import os

from . import crypto, permissions
from .block import Block
from .commands import AddMember, CloseStream, Command, Derive, PublishKey, Seed
from .crypto import KeyPair, Random
from .keys import wrap_xpriv
from .paths import Path


def generate_xpriv(random: Random = os.urandom) -> bytes:
    """A random private key (valid on the curve) followed by a random chain code."""
    return KeyPair.generate(random).private_key + random(32)


def seed_command(
    issuer: bytes, xpriv: bytes, topic: bytes = b"", random: Random = os.urandom
) -> Seed:
    wrapped = wrap_xpriv(xpriv, issuer, random)
    return Seed(
        topic=topic,
        protocol_version=0,
        group_key=crypto.public_key_of(xpriv[:32]),
        initialization_vector=wrapped.initialization_vector,
        encrypted_xpriv=wrapped.encrypted_xpriv,
        ephemeral_public_key=wrapped.ephemeral_public_key,
    )


def derive_command(
    issuer: bytes, root_xpriv: bytes, path: Path, random: Random = os.urandom
) -> tuple[Derive, bytes]:
    xpriv = crypto.derive_path(root_xpriv, path)
    wrapped = wrap_xpriv(xpriv, issuer, random)
    command = Derive(
        path=path,
        group_key=crypto.public_key_of(xpriv[:32]),
        initialization_vector=wrapped.initialization_vector,
        encrypted_xpriv=wrapped.encrypted_xpriv,
        ephemeral_public_key=wrapped.ephemeral_public_key,
    )
    return command, xpriv


def publish_key_command(
    stream_xpriv: bytes, recipient: bytes, random: Random = os.urandom
) -> PublishKey:
    wrapped = wrap_xpriv(stream_xpriv, recipient, random)
    return PublishKey(
        initialization_vector=wrapped.initialization_vector,
        encrypted_xpriv=wrapped.encrypted_xpriv,
        recipient=recipient,
        ephemeral_public_key=wrapped.ephemeral_public_key,
    )


def member_commands(
    stream_xpriv: bytes,
    member: bytes,
    name: str,
    member_permissions: int = permissions.OWNER,
    random: Random = os.urandom,
) -> tuple[AddMember, PublishKey]:
    """``[AddMember, PublishKey]`` for one member."""
    return (
        AddMember(name=name, public_key=member, permissions=member_permissions),
        publish_key_command(stream_xpriv, member, random),
    )


def signed_block(issuer: KeyPair, parent: bytes, commands: tuple[Command, ...]) -> Block:
    return Block(parent=parent, issuer=issuer.public_key, commands=commands).signed_with(
        issuer.private_key
    )


def seed_block(
    issuer: KeyPair, *, topic: bytes = b"", random: Random = os.urandom
) -> tuple[Block, bytes]:
    """The root stream's first block and the fresh root xpriv it wraps to the issuer."""
    xpriv = generate_xpriv(random)
    parent = random(32)
    return signed_block(
        issuer, parent, (seed_command(issuer.public_key, xpriv, topic, random),)
    ), xpriv


def derive_block(
    issuer: KeyPair,
    root_xpriv: bytes,
    path: Path,
    seed_block_hash: bytes,
    member: tuple[bytes, str] | None = None,
    member_permissions: int = permissions.OWNER,
    random: Random = os.urandom,
) -> tuple[Block, bytes]:
    """A derived stream's first block, ``[Derive]`` plus ``[AddMember, PublishKey]`` for
    ``member`` (public key, name) when given; returns the block and the stream xpriv."""
    derive, xpriv = derive_command(issuer.public_key, root_xpriv, path, random)
    commands: tuple[Command, ...] = (derive,)
    if member is not None:
        commands += member_commands(xpriv, member[0], member[1], member_permissions, random)
    return signed_block(issuer, seed_block_hash, commands), xpriv


def add_member_block(
    issuer: KeyPair,
    parent: bytes,
    stream_xpriv: bytes,
    member: bytes,
    name: str,
    member_permissions: int = permissions.OWNER,
    random: Random = os.urandom,
) -> Block:
    return signed_block(
        issuer, parent, member_commands(stream_xpriv, member, name, member_permissions, random)
    )


def close_stream_block(issuer: KeyPair, parent: bytes) -> Block:
    return signed_block(issuer, parent, (CloseStream(),))
