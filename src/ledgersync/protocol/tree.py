"""The stream tree, or trustchain: a root stream and derived streams.

See docs/protocol.md, "Streams and the tree".

Streams are keyed by their own first command (Seed → root, Derive → its path), never by the
keys a backend sent them under (docs/protocol.md, "The backend's JSON").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import crypto, permissions
from .block import EncodedBlock, decode_stream_blocks
from .commands import Derive, Seed
from .errors import CryptoError, DecodeError, ResolutionError
from .keys import StreamKey, unwrap_xpriv
from .paths import (
    ROOT_PATH,
    Path,
    application_path,
    format_path,
    parse_application_path,
)
from .permissions import PermissionRules
from .resolver import ResolvedStream, extend_stream, resolve_stream


def trustchain_id_from_hash(root_seed_block_hash: bytes) -> str:
    """``"00" ‖ hex(hash of the root Seed block)``, as the backend assigns it."""
    return "00" + root_seed_block_hash.hex()


@dataclass(frozen=True)
class StreamTree:
    root: ResolvedStream
    derived: Mapping[Path, ResolvedStream]

    @property
    def trustchain_id(self) -> str:
        return trustchain_id_from_hash(self.root.block_hashes[0])

    def streams(self) -> list[ResolvedStream]:
        """The root first, then the derived streams in path order."""
        return [self.root, *(self.derived[path] for path in sorted(self.derived))]

    def get(self, path: Path) -> ResolvedStream | None:
        return self.root if path == ROOT_PATH else self.derived.get(path)

    def _indexed_application_streams(self, application_id: int) -> list[tuple[int, ResolvedStream]]:
        """This application's streams with their indices, oldest index first."""
        found = []
        for path, stream in self.derived.items():
            parsed = parse_application_path(path)
            if parsed is not None and parsed[0] == application_id:
                found.append((parsed[1], stream))
        return sorted(found, key=lambda item: item[0])

    def application_streams(self, application_id: int) -> list[ResolvedStream]:
        """This application's streams, oldest index first."""
        return [stream for _, stream in self._indexed_application_streams(application_id)]

    def current_application_stream(self, application_id: int) -> ResolvedStream | None:
        """The newest stream of the application if it is open, else None."""
        streams = self.application_streams(application_id)
        if streams and not streams[-1].closed:
            return streams[-1]
        return None

    def application_index(self, application_id: int) -> int:
        """The index to use now: the newest open one, or the next after a closed one."""
        streams = self._indexed_application_streams(application_id)
        if not streams:
            return 0
        index, newest = streams[-1]
        return index + 1 if newest.closed else index

    def current_application_path(self, application_id: int) -> Path:
        return application_path(application_id, self.application_index(application_id))

    def applications(self) -> dict[int, ResolvedStream]:
        """The newest stream of each application present, by application id (ascending);
        closed streams included (Ledger's ``getApplicationStreams``)."""
        newest: dict[int, tuple[int, ResolvedStream]] = {}
        for path, stream in self.derived.items():
            parsed = parse_application_path(path)
            if parsed is None:
                continue
            application_id, index = parsed
            if application_id not in newest or newest[application_id][0] < index:
                newest[application_id] = (index, stream)
        return {key: newest[key][1] for key in sorted(newest)}

    def extended(
        self, path: Path, blocks: bytes, *, rules: PermissionRules = PermissionRules.V1
    ) -> StreamTree:
        """This tree with ``blocks`` (encoded, concatenated) appended to the stream at
        ``path``, or forming a new derived stream there.

        Only the new blocks are resolved, against the streams already resolved, yet the result
        and the first error are those :func:`resolve_tree` gives for the whole extended tree:
        appending to the root re-checks that every derived stream is still issued by a root
        owner. ``rules`` must be the ones the tree was resolved with.
        """
        new_blocks = decode_stream_blocks(blocks)
        if not new_blocks:
            raise DecodeError("no blocks to append")
        current = self.get(path)
        if current is None:
            return self._with_new_stream(new_blocks, rules)
        try:
            stream = extend_stream(current, new_blocks, rules=rules)
        except ResolutionError as exc:
            raise exc.with_path(format_path(path)) from exc
        if path != ROOT_PATH:
            return StreamTree(self.root, {**self.derived, path: stream})
        checked: dict[Path, ResolvedStream] = {}
        for derived_path in sorted(self.derived):
            derived = self.derived[derived_path]
            check_derived_link(stream, derived_path, derived.blocks[0].block.issuer, checked)
            checked[derived_path] = derived
        return StreamTree(stream, self.derived)

    def _with_new_stream(
        self, blocks: tuple[EncodedBlock, ...], rules: PermissionRules
    ) -> StreamTree:
        """A new derived stream, placed by its own Derive as :func:`resolve_tree` places it."""
        first = blocks[0].block.commands[0]
        if isinstance(first, Seed):
            raise duplicate_root_error()
        if not isinstance(first, Derive):
            raise ResolutionError(0, "first-command", "a stream must start with Seed or Derive")
        check_derived_link(self.root, first.path, blocks[0].block.issuer, self.derived)
        try:
            stream = resolve_stream(blocks, rules=rules, first_parent=self.root.block_hashes[0])
        except ResolutionError as exc:
            raise exc.with_path(format_path(first.path)) from exc
        return StreamTree(self.root, {**self.derived, first.path: stream})

    def has_another_open_application(self, application_id: int) -> bool:
        """Whether an application other than ``application_id`` has its newest stream open
        (Ledger's ``hasAnotherOpenApplication``; decides whether turning one application off
        closes its stream or deletes the trustchain)."""
        return any(
            other != application_id and not stream.closed
            for other, stream in self.applications().items()
        )


def resolve_tree(
    streams: Iterable[bytes], *, rules: PermissionRules = PermissionRules.V1
) -> StreamTree:
    """Resolve every stream of a tree and the links between them.

    Beyond each stream's own rules, a derived stream's first block links to the root Seed
    block and is issued by an OWNER of the root, and no two streams share a path.
    """
    root_blocks = None
    derived_blocks = []
    for data in streams:
        blocks = decode_stream_blocks(data)
        if not blocks:
            raise DecodeError("a stream holds at least one block")
        first = blocks[0].block.commands[0]
        if isinstance(first, Seed):
            if root_blocks is not None:
                raise duplicate_root_error()
            root_blocks = blocks
        elif isinstance(first, Derive):
            derived_blocks.append((first.path, blocks))
        else:
            raise ResolutionError(0, "first-command", "a stream must start with Seed or Derive")
    if root_blocks is None:
        raise ResolutionError(0, "missing-root", "the tree has no root stream (Seed)", "m/")
    try:
        root = resolve_stream(root_blocks, rules=rules)
    except ResolutionError as exc:
        raise exc.with_path("m/") from exc
    seed_hash = root.block_hashes[0]
    derived: dict[Path, ResolvedStream] = {}
    for path, blocks in derived_blocks:
        check_derived_link(root, path, blocks[0].block.issuer, derived)
        try:
            derived[path] = resolve_stream(blocks, rules=rules, first_parent=seed_hash)
        except ResolutionError as exc:
            raise exc.with_path(format_path(path)) from exc
    return StreamTree(root, derived)


def duplicate_root_error() -> ResolutionError:
    return ResolutionError(0, "duplicate-stream", "two root streams in one tree")


def check_derived_link(
    root: ResolvedStream, path: Path, issuer: bytes, derived: Mapping[Path, ResolvedStream]
) -> None:
    """The tree's own rules for a derived stream at ``path`` whose first block ``issuer``
    signed: no other stream at ``path`` in ``derived``, and an issuer who owns the root.
    (That its first block links to the root Seed block is checked by resolving it with
    ``first_parent``.)"""
    where = format_path(path)
    if path in derived:
        raise ResolutionError(0, "duplicate-stream", f"two streams at {where}", where)
    member = root.member(issuer)
    if member is None or member.permissions != permissions.OWNER:
        raise ResolutionError(
            0, "derive-issuer", "Derive is not issued by an owner of the root stream", where
        )


def read_key(tree: StreamTree, member_secret: bytes, path: Path) -> StreamKey:
    """The xpriv of the stream at ``path`` as ``member_secret`` can read it.

    See docs/protocol.md, "Reading a key".

    Walks from ``path`` toward the root to the first stream that published a key to this
    member, decrypts it, then derives the remaining indices as written in ``path`` (the
    TypeScript bug of deriving by position is not reproduced).
    """
    me = crypto.public_key_of(member_secret)
    for depth in range(len(path), -1, -1):
        stream = tree.get(path[:depth])
        if stream is None or me not in stream.keys:
            continue
        xpriv = unwrap_xpriv(member_secret, stream.keys[me])
        return StreamKey(crypto.derive_path(xpriv, path[depth:]))
    raise CryptoError(f"no key was published to {me.hex()} at or above {format_path(path)}")
