"""Stream resolution: replay a stream's blocks and enforce every rule.

See docs/protocol.md, "Resolution".

The rules are the newest Ledger Live ones, with the historical no-op checks made real:

* ``parent``: block h > 0 links to the hash of block h − 1;
* ``signature``: every block is signed (low-S DER) by its issuer;
* ``version``: blocks are version 1;
* ``first-command``: block 0 opens with Seed or Derive; a Seed appears nowhere else;
* ``member``: the issuer of block h > 0 is a member;
* ``owner``: a Derive after block 0 needs an OWNER issuer;
* ``permission``: AddMember needs ADD_MEMBER (v1) and, under v2 rules, issuing any block
  needs CAN_ADD_BLOCK and receiving a key CAN_ENCRYPT;
* ``publish-key``: the publisher holds the key or has KEY_CREATOR; the recipient is a member;
* ``closed``: nothing follows a CloseStream;
* ``derive-path``: a Derive path is non-empty and fully hardened;
* ``unsupported-command``: EditMember and unknown commands are not resolved.

Unknown permission bits are not rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import crypto, permissions
from .block import EncodedBlock, decode_stream_blocks
from .commands import (
    AddMember,
    CloseStream,
    Derive,
    PublishKey,
    Seed,
    command_name,
)
from .errors import CryptoError, DecodeError, ResolutionError, SignatureError
from .keys import WrappedKey
from .paths import ROOT_PATH, Path, format_path, is_hardened
from .permissions import PermissionRules


@dataclass(frozen=True, slots=True)
class Member:
    public_key: bytes
    #: The AddMember name; None for the stream's creator (the device), which has none.
    name: str | None
    permissions: int
    owns_key: bool


@dataclass(frozen=True)
class ResolvedStream:
    """What a valid stream says: who is in it, who holds its key, and its identity."""

    path: Path
    is_root: bool
    creator: bytes
    group_key: bytes
    stream_id: bytes
    topic: bytes | None
    closed: bool
    members: tuple[Member, ...]
    keys: Mapping[bytes, WrappedKey] = field(repr=False)
    blocks: tuple[EncodedBlock, ...] = field(repr=False)
    block_hashes: tuple[bytes, ...] = field(repr=False)

    @property
    def path_text(self) -> str:
        return format_path(self.path)

    @property
    def last_hash(self) -> bytes:
        return self.block_hashes[-1]

    @property
    def height(self) -> int:
        """The number of blocks."""
        return len(self.block_hashes)

    def member(self, public_key: bytes) -> Member | None:
        for member in self.members:
            if member.public_key == public_key:
                return member
        return None

    def is_member(self, public_key: bytes) -> bool:
        return self.member(public_key) is not None

    @property
    def added_members(self) -> tuple[Member, ...]:
        """Members added by AddMember (Ledger's ``membersData``); excludes the creator."""
        return tuple(member for member in self.members if member.name is not None)

    @property
    def key_holders(self) -> tuple[bytes, ...]:
        return tuple(self.keys)

    def encode(self) -> bytes:
        return b"".join(block.encoded for block in self.blocks)


class _State:
    __slots__ = (
        "closed",
        "created",
        "creator",
        "group_key",
        "is_root",
        "keys",
        "members",
        "path",
        "stream_id",
        "topic",
    )

    def __init__(self) -> None:
        self.created = False
        self.closed = False
        self.members: dict[bytes, Member] = {}
        self.keys: dict[bytes, WrappedKey] = {}
        self.group_key = b""
        self.path: Path = ROOT_PATH
        self.topic: bytes | None = None
        self.stream_id = b""
        self.is_root = False
        self.creator = b""

    def add_member(self, key: bytes, name: str | None, perms: int) -> None:
        existing = self.members.get(key)
        owns = existing.owns_key if existing else key in self.keys
        self.members[key] = Member(key, name, perms, owns)

    def give_key(self, key: bytes, wrapped: WrappedKey) -> None:
        self.keys[key] = wrapped
        member = self.members.get(key)
        if member is not None and not member.owns_key:
            self.members[key] = Member(member.public_key, member.name, member.permissions, True)

    @classmethod
    def resumed(cls, stream: ResolvedStream) -> _State:
        """The state a resolution of ``stream``'s blocks ends in, rebuilt from its result."""
        state = cls()
        state.created = True
        state.closed = stream.closed
        state.members = {member.public_key: member for member in stream.members}
        state.keys = dict(stream.keys)
        state.group_key = stream.group_key
        state.path = stream.path
        state.topic = stream.topic
        state.stream_id = stream.stream_id
        state.is_root = stream.is_root
        state.creator = stream.creator
        return state

    def result(self, blocks: tuple[EncodedBlock, ...], hashes: list[bytes]) -> ResolvedStream:
        return ResolvedStream(
            path=self.path,
            is_root=self.is_root,
            creator=self.creator,
            group_key=self.group_key,
            stream_id=self.stream_id,
            topic=self.topic,
            closed=self.closed,
            members=tuple(self.members.values()),
            keys=dict(self.keys),
            blocks=blocks,
            block_hashes=tuple(hashes),
        )


def resolve_stream(
    stream: bytes | Sequence[EncodedBlock],
    *,
    rules: PermissionRules = PermissionRules.V1,
    first_parent: bytes | None = None,
) -> ResolvedStream:
    """Resolve a stream given as bytes or as already-decoded blocks.

    ``first_parent``, when given, is the hash block 0 must link to (for a derived stream, the
    root Seed block's hash). Raises :class:`ResolutionError` for the first rule broken and
    :class:`DecodeError` for bytes that are not blocks.
    """
    blocks = decode_stream_blocks(stream) if isinstance(stream, bytes | bytearray) else stream
    if not blocks:
        raise DecodeError("a stream holds at least one block")
    state = _State()
    hashes: list[bytes] = []
    for height, encoded in enumerate(blocks):
        _apply_block(state, height, encoded, hashes, rules, first_parent)
    return state.result(tuple(blocks), hashes)


def extend_stream(
    stream: ResolvedStream,
    blocks: Sequence[EncodedBlock],
    *,
    rules: PermissionRules = PermissionRules.V1,
) -> ResolvedStream:
    """``stream`` with ``blocks`` appended, resolving only the new blocks.

    The same result, and the same :class:`ResolutionError` (heights counted from the start of
    the stream), as resolving the whole stream again: the state a resolution carries from one
    block to the next is exactly what a :class:`ResolvedStream` holds. ``rules`` must be the
    ones ``stream`` was resolved with.
    """
    state = _State.resumed(stream)
    hashes = list(stream.block_hashes)
    for height, encoded in enumerate(blocks, start=stream.height):
        _apply_block(state, height, encoded, hashes, rules, None)
    return state.result(stream.blocks + tuple(blocks), hashes)


def _apply_block(
    state: _State,
    height: int,
    encoded: EncodedBlock,
    hashes: list[bytes],
    rules: PermissionRules,
    first_parent: bytes | None,
) -> None:
    block = encoded.block

    def fail(rule: str, message: str) -> ResolutionError:
        return ResolutionError(height, rule, message)

    if block.version != 1:
        raise fail("version", f"unsupported block version {block.version}")
    if height > 0 and block.parent != hashes[-1]:
        raise fail("parent", "tampered: the parent is not the hash of the previous block")
    if height == 0 and first_parent is not None and block.parent != first_parent:
        raise fail("parent", "the first block does not link to the root Seed block")
    if state.closed:
        raise fail("closed", "the stream is closed; no block may follow a CloseStream")
    if not block.signature:
        raise fail("signature", "the block is not signed")
    try:
        crypto.verify_signature(block.issuer, encoded.signing_digest(), block.signature)
    except (SignatureError, CryptoError) as exc:
        raise fail("signature", f"invalid signature by {block.issuer.hex()}: {exc}") from exc
    block_hash = encoded.hash()
    issuer = state.members.get(block.issuer)
    if height > 0:
        if issuer is None:
            raise fail("member", f"issuer {block.issuer.hex()} is not a member of the stream")
        if rules is PermissionRules.V2 and not issuer.permissions & permissions.CAN_ADD_BLOCK:
            raise fail("permission", "issuer lacks CAN_ADD_BLOCK (LKRPv2)")

    for index, command in enumerate(block.commands):
        if state.closed:
            raise fail("closed", "no command may follow a CloseStream")
        opening = height == 0 and index == 0
        if isinstance(command, Seed):
            if not opening:
                raise fail("first-command", "Seed is only allowed as the stream's first command")
            state.is_root = True
            state.topic = command.topic
            _open_stream(state, block.issuer, command, block_hash, ROOT_PATH)
        elif isinstance(command, Derive):
            if not command.path or not is_hardened(command.path):
                raise fail(
                    "derive-path", f"Derive path {format_path(command.path)} is not hardened"
                )
            if not opening:
                owner = state.members.get(block.issuer)
                if owner is None or owner.permissions != permissions.OWNER:
                    raise fail("owner", "a Derive after the first block needs an OWNER issuer")
            _open_stream(state, block.issuer, command, block_hash, command.path)
        elif opening:
            raise fail(
                "first-command",
                f"a stream must start with Seed or Derive, not {command_name(command)}",
            )
        elif isinstance(command, AddMember):
            current = state.members.get(block.issuer)
            if current is None:
                raise fail("member", "AddMember issuer is not a member")
            if rules is PermissionRules.V1 and not current.permissions & permissions.ADD_MEMBER:
                raise fail("permission", "AddMember issuer lacks the ADD_MEMBER permission")
            state.add_member(command.public_key, command.name, command.permissions)
        elif isinstance(command, PublishKey):
            current = state.members.get(block.issuer)
            if current is None:
                raise fail("member", "PublishKey issuer is not a member")
            holds_key = block.issuer in state.keys
            if not holds_key and not current.permissions & permissions.KEY_CREATOR:
                raise fail(
                    "publish-key", "PublishKey issuer neither holds the key nor has KEY_CREATOR"
                )
            recipient = state.members.get(command.recipient)
            if recipient is None:
                raise fail(
                    "publish-key", f"PublishKey recipient {command.recipient.hex()} is not a member"
                )
            if rules is PermissionRules.V2 and not recipient.permissions & permissions.CAN_ENCRYPT:
                raise fail("permission", "PublishKey recipient lacks CAN_ENCRYPT (LKRPv2)")
            state.give_key(
                command.recipient,
                WrappedKey(
                    command.initialization_vector,
                    command.encrypted_xpriv,
                    command.ephemeral_public_key,
                ),
            )
        elif isinstance(command, CloseStream):
            if block.issuer not in state.members:
                raise fail("member", "CloseStream issuer is not a member")
            state.closed = True
        else:
            raise fail("unsupported-command", f"{command_name(command)} is not supported")
    hashes.append(block_hash)


def _open_stream(
    state: _State, issuer: bytes, command: Seed | Derive, block_hash: bytes, path: Path
) -> None:
    state.created = True
    state.path = path
    state.group_key = command.group_key
    state.stream_id = block_hash
    if not state.creator:
        state.creator = issuer
    state.add_member(
        issuer, state.members[issuer].name if issuer in state.members else None, permissions.OWNER
    )
    state.give_key(
        issuer,
        WrappedKey(
            command.initialization_vector, command.encrypted_xpriv, command.ephemeral_public_key
        ),
    )
