"""The four blocks Ledger Live asks a device to sign, and what each means against a tree.

A request names what to sign; :func:`plan_block` turns it, with the current trustchain,
into what the device needs (docs/protocol.md, "Replaying a stream"):

* the blocks the device must replay first: nothing for a Seed; the root Seed block, then the
  target stream's blocks, for anything in a derived stream (the Seed first);
* the new block's parent: random for a Seed, the Seed block's hash for a Derive,
  the stream's last block hash otherwise;
* the commands, as templates the device fills in.

:func:`check_signed_block` then resolves the tree with the new block, so that no device
hands back a block the trustchain would refuse.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..protocol import crypto, permissions
from ..protocol.block import Block, EncodedBlock
from ..protocol.commands import AddMember, CloseStream
from ..protocol.crypto import Random
from ..protocol.errors import CryptoError, EncodeError, ProtocolError, ResolutionError
from ..protocol.paths import Path, format_path, is_hardened
from ..protocol.resolver import ResolvedStream
from ..protocol.templates import (
    MAX_TOPIC_LENGTH,
    CommandTemplate,
    DeriveTemplate,
    PublishKeyTemplate,
    SeedTemplate,
)
from ..protocol.tree import StreamTree, resolve_tree
from .app import MAX_DERIVATION_DEPTH
from .errors import DeviceResponseError, RequestError, WrongSeedError

#: The app keeps a member name in a 100-byte buffer and hashes it up to its first NUL.
MAX_NAME_LENGTH = 100


@dataclass(frozen=True, slots=True)
class SeedRequest:
    """Create a trustchain: ``[Seed]``, the root stream's only block."""

    topic: bytes = b""

    def __post_init__(self) -> None:
        if len(self.topic) > MAX_TOPIC_LENGTH:
            raise RequestError(f"a topic is at most {MAX_TOPIC_LENGTH} bytes")


@dataclass(frozen=True, slots=True)
class _MemberGrant:
    """A member to add to the stream at ``path``, and give its key to."""

    path: Path
    member: bytes
    name: str
    member_permissions: int = permissions.OWNER

    def __post_init__(self) -> None:
        _check_stream_path(self.path)
        _check_member(self.member, self.name, self.member_permissions)


@dataclass(frozen=True, slots=True)
class DeriveRequest(_MemberGrant):
    """Open the stream at ``path`` and give its key to a member: Derive, AddMember, PublishKey."""


@dataclass(frozen=True, slots=True)
class AddMemberRequest(_MemberGrant):
    """Add a member to the open stream at ``path`` and give it the key: AddMember, PublishKey."""


@dataclass(frozen=True, slots=True)
class CloseRequest:
    """Close the stream at ``path`` (the first step of a rotation): ``[CloseStream]``."""

    path: Path

    def __post_init__(self) -> None:
        _check_stream_path(self.path)


BlockRequest = SeedRequest | DeriveRequest | AddMemberRequest | CloseRequest


def _check_stream_path(path: Path) -> None:
    # Ledger Live only ever signs in application streams; the root stream holds one Seed.
    if not path or len(path) > MAX_DERIVATION_DEPTH or not is_hardened(path):
        raise RequestError(
            f"stream path {format_path(path)} must be 1 to {MAX_DERIVATION_DEPTH} hardened "
            "indices, such as m/0'/16'/0'"
        )


def _check_member(member: bytes, name: str, member_permissions: int) -> None:
    try:
        crypto.validate_public_key(member)
    except CryptoError as exc:
        raise RequestError(f"member key: {exc}") from exc
    encoded = name.encode("utf-8")
    if not encoded or len(encoded) > MAX_NAME_LENGTH or "\x00" in name:
        raise RequestError(f"a member name is 1 to {MAX_NAME_LENGTH} UTF-8 bytes, without NUL")
    if not 0 <= member_permissions <= 0xFFFFFFFF:
        raise RequestError("member permissions are an unsigned 32-bit integer")


@dataclass(frozen=True, slots=True)
class BlockPlan:
    """Everything a device session needs to sign one request."""

    context: tuple[EncodedBlock, ...]
    parent: bytes
    templates: tuple[CommandTemplate, ...]
    #: The stream the new block goes into (the root for a Seed).
    path: Path


def plan_block(
    request: BlockRequest,
    tree: StreamTree | None,
    random: Random = os.urandom,
    device_key: bytes | None = None,
) -> BlockPlan:
    """What to replay, the parent and the templates; :class:`RequestError` if it cannot fit.

    With the device's key known, a trustchain another seed created is refused at once with
    :class:`WrongSeedError`, before the user is asked to approve anything.
    """
    if isinstance(request, SeedRequest):
        if tree is not None:
            raise RequestError(f"trustchain {tree.trustchain_id} already exists")
        # The first block's parent is random and checked by no one (docs/protocol.md, "Parents").
        return BlockPlan((), random(32), (SeedTemplate(request.topic),), ())
    if tree is None:
        raise RequestError("there is no trustchain yet: create it (Seed) first")
    if device_key is not None and device_key != tree.root.creator:
        raise WrongSeedError(
            f"trustchain {tree.trustchain_id} was created with another seed than this "
            f"device's (seed-id {device_key.hex()})"
        )
    seed_block = tree.root.blocks[0]
    where = format_path(request.path)
    stream = tree.get(request.path)
    if isinstance(request, DeriveRequest):
        if stream is not None:
            raise RequestError(f"a stream already exists at {where}")
        templates: tuple[CommandTemplate, ...] = (
            DeriveTemplate(request.path),
            *_member_templates(request),
        )
        return BlockPlan((seed_block,), seed_block.hash(), templates, request.path)
    if stream is None:
        raise RequestError(f"there is no stream at {where}")
    if stream.closed:
        raise RequestError(f"the stream at {where} is closed")
    context = (seed_block, *stream.blocks)
    if isinstance(request, AddMemberRequest):
        return BlockPlan(context, stream.last_hash, _member_templates(request), request.path)
    return BlockPlan(context, stream.last_hash, (CloseStream(),), request.path)


def _member_templates(request: _MemberGrant) -> tuple[CommandTemplate, ...]:
    try:
        add = AddMember(request.name, request.member, request.member_permissions)
    except EncodeError as exc:
        raise RequestError(str(exc)) from exc
    return add, PublishKeyTemplate(request.member)


def check_signed_block(plan: BlockPlan, block: Block, tree: StreamTree | None) -> None:
    """Resolve the trustchain with ``block`` added; raise if it would not be accepted.

    A block issued by a key that is not a member of the stream (a device restored with
    another phrase closing someone else's stream, …) is the "wrong seed" case.
    """
    try:
        block.verify_signature()
        resolve_tree(_streams_with(plan, block, tree))
    except ResolutionError as exc:
        if exc.rule in ("member", "derive-issuer"):
            raise WrongSeedError(
                f"device {block.issuer.hex()} is not a member of this trustchain: it was "
                "created with another seed"
            ) from exc
        raise DeviceResponseError(
            f"the device signed a block the trustchain refuses: {exc}"
        ) from exc
    except ProtocolError as exc:
        raise DeviceResponseError(f"the device signed an invalid block: {exc}") from exc


def _streams_with(plan: BlockPlan, block: Block, tree: StreamTree | None) -> Sequence[bytes]:
    if tree is None:
        return [block.encode()]
    streams: list[ResolvedStream] = tree.streams()
    encoded = [stream.encode() for stream in streams if stream.path != plan.path]
    target = tree.get(plan.path)
    previous = target.encode() if target is not None else b""
    return [*encoded, previous + block.encode()]
