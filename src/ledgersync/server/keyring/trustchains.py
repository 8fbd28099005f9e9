"""Reading and writing trustchains on behalf of an authenticated token.

Authorization (checked against the stored state, so that it follows rotations at once):

* a **device** token may read and write every stream of the trustchains whose root Seed it
  issued, create trustchains (``/v1/seed``) and derive streams; any other trustchain answers
  401 ``JWT contains no permission for trustchain <id>``;
* a **member** token may act on a trustchain its token names, as long as the member still
  belongs to an open application stream there (otherwise 401 ``JWT is expired …`` so that the
  client logs in again and learns it was ejected); it may append only to the open stream it
  belongs to (otherwise 401 ``path does not match``), read the tree and delete the trustchain.

A trustchain that does not exist, or was deleted, answers 404 ``No such trustchain <id>``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...protocol import ResolvedStream, format_path, parse_path
from ..errors import (
    JWT_EXPIRED_REAUTHENTICATE,
    JWT_NO_PERMISSION,
    PATH_DOES_NOT_MATCH,
    BadRequest,
    NotFound,
    Unauthorized,
    no_permission,
    no_such_trustchain,
)
from ..storage import AlreadyExists, NoSuchTrustchain, StreamInfo, StreamMoved, TrustchainInfo
from ..tokens import Permissions, TokenClaims
from .auth import current_permissions, is_trustchain_id
from .context import KeyRing
from .permissions import ROOT_PATH_TEXT, member_paths
from .validation import (
    InvalidBlocks,
    Outdated,
    decode_blocks,
    resolve_stored,
    validate_derivation,
    validate_extension,
    validate_root,
)


async def list_trustchains(ring: KeyRing, claims: TokenClaims) -> Permissions:
    """``GET /v1/trustchains``: ``{id: {path: ["owner"]}}`` for the token's subject, now."""
    return await current_permissions(ring, claims)


async def get_tree(ring: KeyRing, claims: TokenClaims, trustchain_id: str) -> dict[str, str]:
    """``GET /v1/trustchain/{id}``: the root under ``m/`` and, under ``m/<appId>'``, the
    newest stream of each application (hex)."""
    trustchain, _ = await _authorize(ring, claims, trustchain_id)
    root = trustchain.stream(ROOT_PATH_TEXT)
    if root is None:  # deleted while we were reading
        raise NotFound(no_such_trustchain(trustchain_id))
    keys = {ROOT_PATH_TEXT: root}
    newest: dict[int, tuple[int, StreamInfo]] = {}
    for stream in trustchain.streams:
        if stream.application is not None:
            application_id, index = stream.application
            if application_id not in newest or newest[application_id][0] < index:
                newest[application_id] = (index, stream)
    for application_id, (_, stream) in sorted(newest.items()):
        keys[f"m/{application_id}'"] = stream
    # The streams as the snapshot above saw them (cached while they do not move).
    streams = await ring.store.read_streams(trustchain_id, list(keys.values()))
    if not all(streams.values()):  # deleted while we were reading
        raise NotFound(no_such_trustchain(trustchain_id))
    return {key: streams[stream.path].hex() for key, stream in keys.items()}


async def create_trustchain(ring: KeyRing, claims: TokenClaims, body: Any) -> str:
    """``POST /v1/seed``: the body is the root stream's hex as a JSON string."""
    if not claims.device:
        raise Unauthorized(f"{JWT_NO_PERMISSION} to create a trustchain: log in with a device")
    blocks = decode_blocks(body, "the root stream", ring.limits)
    trustchain_id, root = validate_root(blocks, claims.subject_key, ring.limits)
    owned = await ring.store.trustchains_of(claims.subject_key)
    if len(owned) >= ring.config.max_trustchains_per_device:
        raise InvalidBlocks(
            "limit", f"a device owns at most {ring.config.max_trustchains_per_device} trustchains"
        )
    try:
        await ring.store.create_trustchain(
            trustchain_id, claims.subject_key, root, int(ring.clock())
        )
    except AlreadyExists as exc:
        raise InvalidBlocks("duplicate-trustchain", str(exc)) from exc
    ring.metrics.trustchains_created.inc()
    ring.metrics.blocks_stored.inc(len(root.blocks))
    return trustchain_id


async def add_derivation(ring: KeyRing, claims: TokenClaims, trustchain_id: str, body: Any) -> None:
    """``POST /v1/trustchain/{id}/derivation``: a whole new derived stream, as a JSON string."""
    trustchain, _ = await _authorize(ring, claims, trustchain_id)
    if not claims.device:
        raise Unauthorized(
            f"{JWT_NO_PERMISSION} to derive streams of trustchain {trustchain_id}: "
            "log in with the device"
        )
    blocks = decode_blocks(body, "the derived stream", ring.limits)
    stream = validate_derivation(blocks, trustchain, ring.limits)
    try:
        await ring.store.add_stream(trustchain_id, stream)
    except AlreadyExists as exc:
        raise InvalidBlocks("derive-index", str(exc)) from exc
    except NoSuchTrustchain as exc:
        raise NotFound(no_such_trustchain(trustchain_id)) from exc
    ring.metrics.blocks_stored.inc(len(stream.blocks))


async def append_commands(
    ring: KeyRing, claims: TokenClaims, trustchain_id: str, body: Any
) -> None:
    """``PUT /v1/trustchain/{id}/commands``: ``{"path": …, "blocks": [hex, …]}``, appended
    all together or not at all."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be an object with path and blocks")
    path = _canonical_path(body.get("path"))
    hex_blocks = body.get("blocks")
    if (
        not isinstance(hex_blocks, list)
        or not hex_blocks
        or not all(isinstance(item, str) for item in hex_blocks)
    ):
        raise BadRequest("blocks must be a non-empty list of hex strings")
    if len(hex_blocks) > ring.limits.max_blocks_per_request:
        raise InvalidBlocks(
            "limit", f"at most {ring.limits.max_blocks_per_request} blocks in one request"
        )
    trustchain, member_streams = await _authorize(ring, claims, trustchain_id)
    if member_streams is not None and path not in member_streams:
        raise Unauthorized(f"{PATH_DOES_NOT_MATCH}: the member belongs to no open stream at {path}")
    stream = trustchain.stream(path)
    if stream is None:
        raise NotFound(f"no stream {path} in trustchain {trustchain_id}")
    blocks = decode_blocks("".join(hex_blocks), "blocks", ring.limits)
    # Blocks below the height we saw are immutable: the stream resolved at that state is
    # cached (exact: StreamStateCache), else its blocks up to that height are read again.
    current = ring.resolved_streams.get(trustchain_id, stream)
    if current is None:
        stored = await ring.store.read_streams(trustchain_id, [stream])
        current = resolve_stored(trustchain, stream, stored[path])
    update, resolved = validate_extension(current, stream, blocks, ring.limits)
    try:
        # Closing a stream deletes its Cloud Sync documents in the same transaction, which
        # announces it to their subscribers (storage/changes.py).
        await ring.store.append(trustchain_id, stream, update)
    except StreamMoved as exc:
        raise Outdated(path) from exc
    appended = StreamInfo(path, stream.application, update.height, update.last_hash, update.closed)
    state = resolution_state(resolved)
    ring.resolved_streams.put(trustchain_id, appended, state, _resolved_size(state))
    ring.metrics.blocks_stored.inc(len(update.blocks))


async def delete_trustchain(ring: KeyRing, claims: TokenClaims, trustchain_id: str) -> None:
    """``DELETE /v1/trustchain/{id}``: the trustchain and all its streams; tokens for it stop
    working and its id cannot be created again."""
    await _authorize(ring, claims, trustchain_id)
    if not await ring.store.delete_trustchain(trustchain_id, int(ring.clock())):
        raise NotFound(no_such_trustchain(trustchain_id))
    ring.resolved_streams.forget(trustchain_id)
    ring.metrics.trustchains_deleted.inc()


async def _authorize(
    ring: KeyRing, claims: TokenClaims, trustchain_id: str
) -> tuple[TrustchainInfo, list[str] | None]:
    """The trustchain, and for a member token the paths of the open streams it is in."""
    if not is_trustchain_id(trustchain_id):
        raise NotFound(no_such_trustchain(trustchain_id[:80]))
    # The trustchain and a member's streams in it, in one snapshot (one round trip).
    member = None if claims.device else claims.subject_key
    trustchain, streams = await ring.store.trustchain_and_member_streams(trustchain_id, member)
    if trustchain is None:
        raise NotFound(no_such_trustchain(trustchain_id))
    if claims.device:
        if trustchain.root_issuer != claims.subject_key:
            raise Unauthorized(no_permission(trustchain_id))
        return trustchain, None
    if trustchain_id not in claims.permissions:
        raise Unauthorized(no_permission(trustchain_id))
    paths = member_paths(streams)
    if not paths:
        raise Unauthorized(
            f"{JWT_EXPIRED_REAUTHENTICATE} (no longer a member of trustchain {trustchain_id})"
        )
    return trustchain, paths


def resolution_state(resolved: ResolvedStream) -> ResolvedStream:
    """``resolved`` without its decoded blocks: all that resuming its resolution needs (its
    members, keys and block hashes; ``extend_stream`` only appends to the blocks). The blocks
    were 5 of the 7 objects per block that every full garbage collection walks (and 60% of
    the memory) in the cache of resolved streams."""
    return replace(resolved, blocks=())


#: The memory of a resolution state (:func:`resolution_state`), measured with tracemalloc:
#: about 100 bytes per block hash, 600 per member with its wrapped key.
_STATE_BYTES_PER_BLOCK = 100
_STATE_BYTES_PER_MEMBER = 600


def _resolved_size(state: ResolvedStream) -> int:
    return state.height * _STATE_BYTES_PER_BLOCK + len(state.members) * _STATE_BYTES_PER_MEMBER


def _canonical_path(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest("path must be a derivation path string such as m/0'/16'/0'")
    try:
        return format_path(parse_path(value))
    except ValueError as exc:
        raise BadRequest(f"path: {exc}") from exc
