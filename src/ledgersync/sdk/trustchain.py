"""``TrustchainSDK``: Ledger Live's trustchain flows (docs/api.md, "SDK flows"), asyncio.

Every flow reads the tree from the server, resolves it locally with every protocol rule
(the server's JSON keys are ignored: streams are placed by their own first command), builds
or asks the device for the blocks it needs, checks the result resolves before sending it,
and turns server answers into Ledger's error taxonomy (see :mod:`.auth`).

Two token caches exist, as in Ledger's SDK: one per (trustchain, member) for member logins,
and one for the device login.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from ..device.interface import Device
from ..protocol import userdata, wire
from ..protocol.block import Block
from ..protocol.builders import add_member_block, close_stream_block
from ..protocol.challenge import Challenge, device_authentication, member_authentication
from ..protocol.crypto import Random
from ..protocol.errors import ProtocolError
from ..protocol.paths import (
    LEDGER_SYNC_APPLICATION_ID,
    ROOT_PATH,
    Path,
    format_path,
)
from ..protocol.permissions import OWNER
from ..protocol.resolver import ResolvedStream
from ..protocol.tree import StreamTree, read_key, resolve_tree
from . import device as devices
from .api import JWT, Permissions, TrustchainAPI
from .auth import AuthPolicy, TokenCache, is_not_a_member
from .credentials import (
    MemberCredentials,
    Trustchain,
    TrustchainMember,
    TrustchainResult,
    TrustchainResultType,
)
from .device import DeviceCallbacks, with_device
from .errors import (
    DecryptionError,
    InvalidResponse,
    InvalidTrustchainData,
    LedgerSyncError,
    MemberNotFound,
    RemoveSelfRefused,
    TrustchainAlreadyInitialized,
    TrustchainAlreadyInitializedWithOtherSeed,
    TrustchainEjected,
    TrustchainNotAllowed,
    TrustchainNotFound,
    TrustchainOutdated,
)
from .http import HTTPOptions

log = logging.getLogger(__name__)

T = TypeVar("T")

AfterRotation = Callable[[Trustchain], Awaitable[None]]


class TrustchainLifecycle(Protocol):
    """Lets the caller act around a key rotation (``remove_member``).

    ``on_trustchain_rotation`` runs before the rotation, with the old trustchain (obtain
    what needs the old key or token now); the function it returns runs after it, with the
    new trustchain (re-encrypt data with the new key).
    """

    async def on_trustchain_rotation(
        self, sdk: TrustchainSDK, old: Trustchain, credentials: MemberCredentials
    ) -> AfterRotation | None: ...


class TrustchainSDK:
    """Create, join, restore and manage a trustchain from one Ledger Live-like instance.

    ``name`` is this instance's member name (shown in the instances list). The API is
    reached at ``api_base_url`` (``http`` sets the transport, client version, timeouts).
    """

    def __init__(
        self,
        api_base_url: str,
        *,
        name: str,
        application_id: int = LEDGER_SYNC_APPLICATION_ID,
        lifecycle: TrustchainLifecycle | None = None,
        http: HTTPOptions | None = None,
        random: Random = os.urandom,
    ) -> None:
        if not name:
            raise ValueError("a member name is required")
        self.name = name
        self.application_id = application_id
        self.lifecycle = lifecycle
        self.api = TrustchainAPI(api_base_url, http)
        self._random = random
        self._member_tokens: dict[tuple[str, bytes], TokenCache] = {}
        self._device: Device | None = None
        self._device_callbacks: DeviceCallbacks | None = None
        self._device_tokens = TokenCache(self._device_login, self.api.refresh)

    @property
    def api_base_url(self) -> str:
        return self.api.base_url

    async def aclose(self) -> None:
        await self.api.aclose()

    async def __aenter__(self) -> TrustchainSDK:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- credentials and tokens -------------------------------------------------------------

    def init_member_credentials(self) -> MemberCredentials:
        """A fresh random member key pair; persist it, it identifies this instance."""
        return MemberCredentials.generate(self._random)

    def invalidate_jwt(self) -> None:
        """Forget every cached token (members' and the device's)."""
        self._member_tokens.clear()
        self._device_tokens.clear()

    def _member_cache(self, trustchain: Trustchain, credentials: MemberCredentials) -> TokenCache:
        key = (trustchain.root_id, credentials.public_key)
        cache = self._member_tokens.get(key)
        if cache is None:

            async def login() -> JWT:
                return await self._member_login(trustchain.root_id, credentials)

            cache = self._member_tokens[key] = TokenCache(login, self.api.refresh)
        return cache

    async def _member_login(self, root_id: str, credentials: MemberCredentials) -> JWT:
        response = await self.api.get_challenge()
        challenge = _challenge(response.tlv)
        signature = member_authentication(challenge, credentials.private_key, root_id)
        try:
            return await self.api.authenticate(response.json, signature)
        except LedgerSyncError as exc:
            if is_not_a_member(exc):
                raise TrustchainEjected(str(exc)) from exc
            raise

    async def _device_login(self) -> JWT:
        device = self._device
        if device is None:
            raise RuntimeError("no device is attached to this flow")
        response = await self.api.get_challenge()
        challenge = _challenge(response.tlv)
        seed_id = await with_device(
            lambda: device.sign_challenge(challenge), self._device_callbacks
        )
        return await self.api.authenticate(response.json, device_authentication(seed_id))

    async def with_auth(
        self,
        trustchain: Trustchain,
        credentials: MemberCredentials,
        job: Callable[[JWT], Awaitable[T]],
        policy: AuthPolicy = AuthPolicy.CACHE,
        ignore_permissions_checks: bool = False,
    ) -> T:
        """Run ``job`` with this member's token for ``trustchain`` (see :mod:`.auth`).

        Unless ``ignore_permissions_checks``, the token must grant the trustchain
        (else :class:`TrustchainNotAllowed`) and its application path (else
        :class:`TrustchainOutdated`: the key was rotated).
        """

        async def checked(jwt: JWT) -> T:
            if not ignore_permissions_checks:
                granted = jwt.permissions.get(trustchain.root_id)
                if not granted:
                    raise TrustchainNotAllowed("permissions not available for current trustchain")
                if trustchain.application_path not in granted:
                    raise TrustchainOutdated(
                        f"expected {trustchain.application_path}, got: {', '.join(granted)}"
                    )
            return await job(jwt)

        return await self._member_cache(trustchain, credentials).run(checked, policy)

    async def _with_device_jwt(self, job: Callable[[JWT], Awaitable[T]]) -> T:
        return await self._device_tokens.run(job)

    def _attach(self, device: Device, callbacks: DeviceCallbacks | None) -> None:
        if self._device is not device:
            self._device_tokens.clear()
        self._device = device
        self._device_callbacks = callbacks

    async def get_jwt(
        self,
        trustchain: Trustchain,
        credentials: MemberCredentials,
        policy: AuthPolicy = AuthPolicy.CACHE,
    ) -> JWT:
        """A member token for ``trustchain`` (for the Cloud Sync backend, which trusts it)."""

        async def identity(jwt: JWT) -> JWT:
            return jwt

        return await self.with_auth(trustchain, credentials, identity, policy)

    # --- reading the tree -------------------------------------------------------------------

    async def _fetch_tree(self, jwt: JWT, root_id: str) -> StreamTree:
        streams = await self.api.get_trustchain(jwt, root_id)
        try:
            return resolve_tree([bytes.fromhex(data) for data in streams.values()])
        except ValueError as exc:  # ProtocolError is not a ValueError; hex errors are
            raise InvalidResponse(f"trustchain {root_id}: a stream is not hex") from exc
        except ProtocolError as exc:
            raise InvalidTrustchainData(f"trustchain {root_id} does not verify: {exc}") from exc

    def _newest_stream(self, tree: StreamTree) -> ResolvedStream:
        streams = tree.application_streams(self.application_id)
        if not streams:
            raise TrustchainNotFound(
                f"trustchain {tree.trustchain_id} has no stream for application "
                f"{self.application_id}"
            )
        return streams[-1]

    def _read_key(self, tree: StreamTree, credentials: MemberCredentials, path: Path) -> bytes:
        try:
            return read_key(tree, credentials.private_key, path).xpriv
        except ProtocolError as exc:
            raise TrustchainEjected(str(exc)) from exc

    def _trustchain(
        self, tree: StreamTree, credentials: MemberCredentials, path: Path
    ) -> Trustchain:
        xpriv = self._read_key(tree, credentials, path)
        return Trustchain(tree.trustchain_id, xpriv[:32], format_path(path))

    # --- flows ------------------------------------------------------------------------------

    async def get_or_create_trustchain(
        self,
        device: Device,
        credentials: MemberCredentials,
        *,
        callbacks: DeviceCallbacks | None = None,
        topic: bytes = b"",
        current_trustchain: Trustchain | None = None,
    ) -> TrustchainResult:
        """Join this instance to the device's trustchain, creating the trustchain if needed.

        Result type: ``created`` (the device had none), ``updated`` (this member was added,
        possibly on a new application stream), ``restored`` (it already was a member).
        With ``current_trustchain`` (the instance is already synchronised) and a still-valid
        membership, raises :class:`TrustchainAlreadyInitialized` (same seed) or
        :class:`TrustchainAlreadyInitializedWithOtherSeed`.
        """
        self.invalidate_jwt()
        self._attach(device, callbacks)
        result_type = TrustchainResultType.RESTORED
        trustchains = await self._with_device_jwt(self.api.get_trustchains)
        if callbacks and callbacks.on_initial_response:
            callbacks.on_initial_response(trustchains)

        if current_trustchain is not None:
            try:
                await self.restore_trustchain(current_trustchain, credentials)
            except LedgerSyncError as exc:
                log.info("the current trustchain cannot be restored (%s); continuing", exc)
            else:
                if current_trustchain.root_id in trustchains:
                    raise TrustchainAlreadyInitialized(current_trustchain.root_id)
                raise TrustchainAlreadyInitializedWithOtherSeed(current_trustchain.root_id)

        if not trustchains:
            result_type = TrustchainResultType.CREATED
            root_block = await with_device(lambda: devices.create_root(device, topic), callbacks)
            root_stream = root_block.encode()
            _check_tree([root_stream])
            await self._with_device_jwt(lambda jwt: self.api.post_seed(jwt, root_stream))
            # The device token predates the trustchain: refresh it to gain the permission.
            await self._device_tokens.get(AuthPolicy.REFRESH)
            trustchains = await self._with_device_jwt(self.api.get_trustchains)

        root_id = _device_root_id(trustchains)
        tree = await self._with_device_jwt(lambda jwt: self._fetch_tree(jwt, root_id))
        path = tree.current_application_path(self.application_id)
        stream = tree.get(path)
        if stream is None or not stream.is_member(credentials.public_key):
            if result_type is TrustchainResultType.RESTORED:
                result_type = TrustchainResultType.UPDATED
            tree = await self._push_member_with_device(
                device,
                callbacks,
                tree,
                path,
                TrustchainMember(credentials.pubkey, self.name, OWNER),
            )
        return TrustchainResult(result_type, self._trustchain(tree, credentials, path))

    async def _push_member_with_device(
        self,
        device: Device,
        callbacks: DeviceCallbacks | None,
        tree: StreamTree,
        path: Path,
        member: TrustchainMember,
    ) -> StreamTree:
        """The device shares the stream at ``path`` with ``member``, deriving it if new."""
        block = await with_device(
            lambda: devices.share(
                device, tree, path, member.public_key, member.name, member.permissions
            ),
            callbacks,
        )
        extended = _extend(tree, path, [block])
        encoded = block.encode()
        if tree.get(path) is None:
            await self._with_device_jwt(
                lambda jwt: self.api.post_derivation(jwt, tree.trustchain_id, encoded)
            )
        else:
            await self._with_device_jwt(
                lambda jwt: self.api.put_commands(
                    jwt, tree.trustchain_id, format_path(path), [encoded]
                )
            )
        return extended

    async def restore_trustchain(
        self, trustchain: Trustchain, credentials: MemberCredentials
    ) -> Trustchain:
        """The trustchain as it is now: the newest application path and key.

        Raises :class:`TrustchainEjected` if this member was removed (it cannot log in, or
        the newest stream does not give it the key) or the stream is closed.
        """
        tree = await self.with_auth(
            trustchain,
            credentials,
            lambda jwt: self._fetch_tree(jwt, trustchain.root_id),
            AuthPolicy.REFRESH,
            ignore_permissions_checks=True,
        )
        stream = self._newest_stream(tree)
        if stream.closed:
            raise TrustchainEjected("application stream is closed")
        return self._trustchain(tree, credentials, stream.path)

    async def get_members(
        self, trustchain: Trustchain, credentials: MemberCredentials
    ) -> list[TrustchainMember]:
        """The instances of the newest application stream (the device is not one)."""
        tree = await self.with_auth(
            trustchain, credentials, lambda jwt: self._fetch_tree(jwt, trustchain.root_id)
        )
        members = _instances_of(self._newest_stream(tree))
        if not any(member.id == credentials.pubkey for member in members):
            raise TrustchainEjected(wire.NOT_A_MEMBER)
        return members

    async def add_member(
        self, trustchain: Trustchain, credentials: MemberCredentials, member: TrustchainMember
    ) -> None:
        """Add ``member`` with this member's own key, no device (QR pairing). Idempotent."""
        tree = await self.with_auth(
            trustchain, credentials, lambda jwt: self._fetch_tree(jwt, trustchain.root_id)
        )
        stream = self._newest_stream(tree)
        if stream.is_member(member.public_key):
            return
        if stream.closed:
            raise TrustchainEjected("application stream is closed")
        blocks, _ = self._member_blocks(tree, credentials, stream.path, [member])
        encoded = [block.encode() for block in blocks]
        await self.with_auth(
            trustchain,
            credentials,
            lambda jwt: self.api.put_commands(jwt, trustchain.root_id, stream.path_text, encoded),
        )

    def _member_blocks(
        self,
        tree: StreamTree,
        credentials: MemberCredentials,
        path: Path,
        members: Sequence[TrustchainMember],
    ) -> tuple[list[Block], StreamTree]:
        """Chained ``[AddMember, PublishKey]`` blocks signed by this member, and the tree they
        extend (checked locally, so that nothing invalid is sent)."""
        stream = tree.get(path)
        if stream is None:
            where = format_path(path)
            raise TrustchainNotFound(f"trustchain {tree.trustchain_id} has no stream at {where}")
        xpriv = self._read_key(tree, credentials, path)
        blocks: list[Block] = []
        parent = stream.last_hash
        for member in members:
            block = add_member_block(
                credentials.key_pair,
                parent,
                xpriv,
                member.public_key,
                member.name,
                member.permissions,
                self._random,
            )
            blocks.append(block)
            parent = block.hash()
        return blocks, _extend(tree, path, blocks)

    async def remove_member(
        self,
        device: Device,
        trustchain: Trustchain,
        credentials: MemberCredentials,
        member: TrustchainMember,
        *,
        callbacks: DeviceCallbacks | None = None,
    ) -> Trustchain:
        """Remove ``member`` by rotating the application key (needs the device).

        The device signs a CloseStream of the current stream (held back) and derives the next
        stream with this member in it; this member re-publishes the new key to every other
        remaining member in one request; only then is the close sent, so that a cancellation
        half-way leaves the old stream usable. Returns the new trustchain; the lifecycle hook
        (if any) runs before and after. Removing oneself raises :class:`RemoveSelfRefused`.
        """
        if member.id == credentials.pubkey:
            raise RemoveSelfRefused(
                "removeMember must not be used to remove the current member: "
                "delete the data or remove it from another instance"
            )
        self.invalidate_jwt()
        self._attach(device, callbacks)
        after_rotation = None
        if self.lifecycle is not None:
            after_rotation = await self.lifecycle.on_trustchain_rotation(
                self, trustchain, credentials
            )
        root_id = trustchain.root_id
        tree = await self._with_device_jwt(lambda jwt: self._fetch_tree(jwt, root_id))
        stream = self._newest_stream(tree)
        if stream.closed:
            raise TrustchainOutdated("the current application stream is already closed")
        members = _instances_of(stream)
        if not any(m.id == member.id for m in members):
            raise MemberNotFound(f"member {member.id} is not in {stream.path_text}")
        remaining = [m for m in members if m.id not in (member.id, credentials.pubkey)]

        close_block = await with_device(lambda: devices.close(device, tree, stream.path), callbacks)
        # The close is sent last (see above); the local tree has it already, so the next
        # index follows from a closed stream.
        tree = _extend(tree, stream.path, [close_block])
        new_path = tree.current_application_path(self.application_id)
        tree = await self._push_member_with_device(
            device, callbacks, tree, new_path, TrustchainMember(credentials.pubkey, self.name)
        )
        if remaining:
            blocks, tree = self._member_blocks(tree, credentials, new_path, remaining)
            encoded = [block.encode() for block in blocks]
            await self._with_device_jwt(
                lambda jwt: self.api.put_commands(jwt, root_id, format_path(new_path), encoded)
            )
        closing = [close_block.encode()]
        await self._with_device_jwt(
            lambda jwt: self.api.put_commands(jwt, root_id, stream.path_text, closing)
        )
        await self._device_tokens.get(AuthPolicy.REFRESH)

        new_trustchain = self._trustchain(tree, credentials, new_path)
        if after_rotation is not None:
            await after_rotation(new_trustchain)
        await self.get_jwt(new_trustchain, credentials, AuthPolicy.REFRESH)
        return new_trustchain

    async def destroy_trustchain(
        self, trustchain: Trustchain, credentials: MemberCredentials
    ) -> None:
        """Delete the whole trustchain on the server; every member is then ejected."""
        await self.with_auth(
            trustchain,
            credentials,
            lambda jwt: self.api.delete_trustchain(jwt, trustchain.root_id),
        )
        self.invalidate_jwt()

    async def destroy_application(
        self, trustchain: Trustchain, credentials: MemberCredentials
    ) -> bool:
        """Turn this application off in the trustchain; True if the whole trustchain went.

        As Ledger's newer SDK (``destroyApplication``): when another application's stream
        stays open (for example the wallet CLI's application 17), only this application's
        current stream is closed, with a CloseStream signed by this member's own key (no
        device), and the root and the other applications are kept; the stream's members then
        get :class:`TrustchainEjected`, and activating the application again derives the next
        index. When no other application is open the trustchain is deleted
        (:meth:`destroy_trustchain`). An application already closed is left as it is (False):
        also when this member can no longer log in because it belongs to no open stream.
        """
        self.invalidate_jwt()

        async def fetch(jwt: JWT) -> StreamTree:
            return await self._fetch_tree(jwt, trustchain.root_id)

        try:
            tree = await self.with_auth(
                trustchain, credentials, fetch, AuthPolicy.REFRESH, ignore_permissions_checks=True
            )
        except TrustchainEjected:
            return False  # in no open stream any more: nothing of ours is left to close
        stream = self._newest_stream(tree)
        if stream.closed:
            return False
        if not tree.has_another_open_application(self.application_id):
            await self.destroy_trustchain(trustchain, credentials)
            return True
        if not stream.is_member(credentials.public_key):
            raise TrustchainEjected(f"not a member of {stream.path_text}")
        block = close_stream_block(credentials.key_pair, stream.last_hash)
        _extend(tree, stream.path, [block])  # a check only: nothing reads the tree after this
        closing = [block.encode()]
        await self.with_auth(
            trustchain,
            credentials,
            lambda jwt: self.api.put_commands(jwt, trustchain.root_id, stream.path_text, closing),
            AuthPolicy.REFRESH,
            ignore_permissions_checks=True,
        )
        self.invalidate_jwt()
        return False

    # --- user data --------------------------------------------------------------------------

    def encrypt_user_data(self, trustchain: Trustchain, data: bytes) -> bytes:
        return userdata.encrypt_user_data(trustchain.wallet_sync_encryption_key, data, self._random)

    def decrypt_user_data(self, trustchain: Trustchain, data: bytes) -> bytes:
        try:
            return userdata.decrypt_user_data(trustchain.wallet_sync_encryption_key, data)
        except ProtocolError as exc:
            raise DecryptionError(f"user data cannot be decrypted: {exc}") from exc


def _challenge(tlv: bytes) -> Challenge:
    try:
        return Challenge.decode(tlv)
    except ProtocolError as exc:
        raise InvalidResponse(f"GET /v1/challenge: the challenge does not parse: {exc}") from exc


def _device_root_id(trustchains: Permissions | Mapping[str, Any]) -> str:
    """The trustchain whose root this device owns (its permissions name ``m/``)."""
    root = format_path(ROOT_PATH)
    for root_id, paths in trustchains.items():
        if root in paths:
            return str(root_id)
    raise TrustchainNotFound("the device owns no trustchain root")


def _instances_of(stream: ResolvedStream) -> list[TrustchainMember]:
    """The members an application stream lists as instances (its creator, the device, is
    not one)."""
    return [
        TrustchainMember(member.public_key.hex(), member.name or "", member.permissions)
        for member in stream.added_members
    ]


def _check_tree(streams: list[bytes]) -> StreamTree:
    try:
        return resolve_tree(streams)
    except ProtocolError as exc:
        raise InvalidTrustchainData(f"the blocks to send do not verify: {exc}") from exc


def _extend(tree: StreamTree, path: Path, blocks: Sequence[Block]) -> StreamTree:
    """``tree`` with ``blocks`` appended to the stream at ``path`` (created if absent), so
    that nothing invalid is ever sent; only the new blocks are resolved."""
    try:
        return tree.extended(path, b"".join(block.encode() for block in blocks))
    except ProtocolError as exc:
        raise InvalidTrustchainData(f"the blocks to send do not verify: {exc}") from exc
