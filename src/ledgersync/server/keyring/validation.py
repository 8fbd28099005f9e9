"""Checking received blocks as a careful client would, before anything is stored.

Each stream sent to the server is resolved by :func:`ledgersync.protocol.resolve_stream`
(signatures, parent chain, issuer membership and permissions, nothing after CloseStream)
together with the blocks already stored, plus the rules that only the tree gives:

* ``seed-issuer``: the root Seed is issued by the device that is logged in (``/v1/seed``);
* ``first-command``: a posted stream opens with Seed (root) or Derive (derivation), and
  Seed/Derive appear nowhere else: appended blocks cannot re-open a stream;
* ``derive-path``: a derived stream lives at ``m/0'/<appId>'/<index>'``;
* ``derive-issuer``: the Derive is issued by the root Seed's issuer, and (resolver ``parent``)
  links to the root Seed block's hash;
* ``derive-index``: an application's streams are numbered 0, 1, 2… without gaps or repeats.
  The newest stream may still be open when the next one is derived: Ledger Live's rotation
  posts the new stream first and closes the old one last (``sdk.ts`` ``removeMember``), so that
  a rotation cancelled halfway leaves a usable stream;
* ``limit``: configured bounds on blocks per request, per stream and streams per trustchain.

Every violation is a 400 naming its rule. Blocks that extend an outdated stream state are a
400 whose message starts with ``path does not match``, which Ledger's SDK maps to
``TrustchainOutdated``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...protocol import (
    Derive,
    EncodedBlock,
    ResolvedStream,
    Seed,
    decode_stream_blocks,
    extend_stream,
    format_path,
    resolve_stream,
    trustchain_id_from_hash,
)
from ...protocol.errors import DecodeError, ProtocolError, ResolutionError
from ...protocol.paths import parse_application_path
from ..errors import PATH_DOES_NOT_MATCH, BadRequest
from ..storage import NewBlocks, StreamInfo, TrustchainInfo

ROOT = "m/"


class InvalidBlocks(BadRequest):
    def __init__(self, rule: str, cause: str) -> None:
        super().__init__(f"invalid blocks ({rule}): {cause}", rule=rule)


class Outdated(BadRequest):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"{PATH_DOES_NOT_MATCH} (outdated): the blocks do not extend the current state of "
            f"stream {path}; fetch the trustchain again",
            rule="outdated",
        )


@dataclass(frozen=True)
class Limits:
    max_blocks_per_request: int
    max_stream_blocks: int
    max_streams_per_trustchain: int


def decode_blocks(value: Any, what: str, limits: Limits) -> tuple[EncodedBlock, ...]:
    """Hex text → blocks, refusing anything that is not a non-empty, bounded block sequence."""
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string of hex-encoded blocks")
    try:
        blocks = decode_stream_blocks(bytes.fromhex(value))
    except ValueError as exc:
        raise InvalidBlocks("encoding", f"{what} is not valid hex") from exc
    except DecodeError as exc:
        raise InvalidBlocks("encoding", f"{what}: {exc}") from exc
    if not blocks:
        raise InvalidBlocks("encoding", f"{what} holds no block")
    if len(blocks) > limits.max_blocks_per_request:
        raise InvalidBlocks(
            "limit", f"{len(blocks)} blocks in one request; at most {limits.max_blocks_per_request}"
        )
    return blocks


def seed_hash_of(trustchain_id: str) -> bytes:
    """The root Seed block's hash, which the trustchain id spells after its ``00`` prefix."""
    return bytes.fromhex(trustchain_id[2:])


def validate_root(
    blocks: Sequence[EncodedBlock], device: bytes, limits: Limits
) -> tuple[str, NewBlocks]:
    """A new root stream posted by ``device``: its trustchain id and what to store."""
    if not isinstance(blocks[0].block.commands[0], Seed):
        raise InvalidBlocks("first-command", "the root stream must start with a Seed command")
    _check_openings(blocks, start=0)
    _check_length(len(blocks), limits)
    resolved = _resolve(blocks, ROOT, first_parent=None)
    if blocks[0].block.issuer != device:
        raise InvalidBlocks(
            "seed-issuer",
            f"the Seed is issued by {blocks[0].block.issuer.hex()}, not by the logged-in device",
        )
    return trustchain_id_from_hash(resolved.block_hashes[0]), _new_blocks(
        resolved, ROOT, None, blocks
    )


def validate_derivation(
    blocks: Sequence[EncodedBlock], trustchain: TrustchainInfo, limits: Limits
) -> NewBlocks:
    """A new derived (application) stream for ``trustchain``."""
    first = blocks[0].block.commands[0]
    if not isinstance(first, Derive):
        raise InvalidBlocks("first-command", "a derived stream must start with a Derive command")
    path = format_path(first.path)
    application = parse_application_path(first.path)
    if application is None:
        raise InvalidBlocks(
            "derive-path", f"a derived stream lives at m/0'/<appId>'/<index>', not {path}"
        )
    if blocks[0].block.issuer != trustchain.root_issuer:
        raise InvalidBlocks("derive-issuer", "the Derive is not issued by the root Seed's issuer")
    _check_openings(blocks, start=0)
    _check_length(len(blocks), limits)
    if trustchain.stream(path) is not None:
        raise InvalidBlocks("derive-index", f"stream {path} already exists")
    if len(trustchain.streams) >= limits.max_streams_per_trustchain:
        raise InvalidBlocks(
            "limit", f"a trustchain holds at most {limits.max_streams_per_trustchain} streams"
        )
    existing = trustchain.application_streams(application[0])
    expected = existing[-1].application[1] + 1 if existing and existing[-1].application else 0
    if application[1] != expected:
        raise InvalidBlocks(
            "derive-index",
            f"the next stream of application {application[0]} has index {expected}, "
            f"not {application[1]}",
        )
    resolved = _resolve(blocks, path, first_parent=seed_hash_of(trustchain.id))
    return _new_blocks(resolved, path, application, blocks)


def validate_append(
    trustchain: TrustchainInfo,
    stream: StreamInfo,
    stored: Sequence[bytes],
    blocks: Sequence[EncodedBlock],
    limits: Limits,
) -> NewBlocks:
    """Blocks appended to ``stream``, whose stored blocks are ``stored``."""
    update, _ = validate_extension(
        resolve_stored(trustchain, stream, b"".join(stored)), stream, blocks, limits
    )
    return update


def resolve_stored(trustchain: TrustchainInfo, stream: StreamInfo, stored: bytes) -> ResolvedStream:
    """The stored blocks of ``stream`` (concatenated), resolved: what appends extend."""
    first_parent = None if stream.application is None else seed_hash_of(trustchain.id)
    with _rules_broken(stream.path):
        return resolve_stream(stored, first_parent=first_parent)


def validate_extension(
    current: ResolvedStream,
    stream: StreamInfo,
    blocks: Sequence[EncodedBlock],
    limits: Limits,
) -> tuple[NewBlocks, ResolvedStream]:
    """Blocks appended to ``stream``, resolved as ``current``: what to store, and the stream
    resolved with them (resolving only the new blocks: the same result and the same errors
    as resolving it all again)."""
    if blocks[0].block.parent != stream.last_hash:
        raise Outdated(stream.path)
    _check_openings(blocks, start=None)
    _check_length(stream.height + len(blocks), limits)
    with _rules_broken(stream.path):
        resolved = extend_stream(current, blocks)
    known = {member.public_key for member in current.members}
    update = _new_blocks(resolved, stream.path, stream.application, blocks, known)
    return update, resolved


def _check_openings(blocks: Sequence[EncodedBlock], *, start: int | None) -> None:
    """Seed/Derive only as the first command of block ``start`` (None: nowhere)."""
    for height, block in enumerate(blocks):
        for index, command in enumerate(block.block.commands):
            if isinstance(command, Seed | Derive) and (height, index) != (start, 0):
                raise InvalidBlocks(
                    "first-command",
                    f"block {height}: Seed and Derive may only open a new stream",
                )


def _check_length(height: int, limits: Limits) -> None:
    if height > limits.max_stream_blocks:
        raise InvalidBlocks("limit", f"a stream holds at most {limits.max_stream_blocks} blocks")


def _resolve(
    blocks: Sequence[EncodedBlock], path: str, first_parent: bytes | None
) -> ResolvedStream:
    with _rules_broken(path):
        return resolve_stream(blocks, first_parent=first_parent)


@contextmanager
def _rules_broken(path: str) -> Iterator[None]:
    """A resolution of stream ``path`` failing: a 400 naming the rule broken."""
    try:
        yield
    except ResolutionError as exc:
        raise InvalidBlocks(exc.rule, f"stream {path} block {exc.height}: {exc.detail}") from exc
    except ProtocolError as exc:
        raise InvalidBlocks("encoding", f"stream {path}: {exc}") from exc


def _new_blocks(
    resolved: ResolvedStream,
    path: str,
    application: tuple[int, int] | None,
    added: Sequence[EncodedBlock],
    known_members: Set[bytes] = frozenset(),
) -> NewBlocks:
    # Only the members these blocks add: the stored ones are already recorded, and writing
    # them all again made every append cost one statement per member of the stream.
    return NewBlocks(
        path=path,
        application=application,
        blocks=tuple(block.encoded for block in added),
        height=resolved.height,
        last_hash=resolved.last_hash,
        closed=resolved.closed,
        members=tuple(
            member.public_key
            for member in resolved.members
            if member.public_key not in known_members
        ),
    )
