"""``CloudSyncSDK``: pull, push and destroy one encrypted document (docs/api.md, "Cloud Sync API").

Payload wrapping: ``base64(encryptUserData(walletSyncEncryptionKey, zlib(UTF-8 JSON)))``; on
reading, gzip, zlib and raw deflate are all accepted (:mod:`ledgersync.protocol.userdata`).

Version rules:

* ``pull`` sends the local version; ``up-to-date`` changes nothing; ``out-of-sync`` brings the
  server's document, whose version is adopted whatever it is (so a client never stays out of
  sync, Ledger PR #7929); ``no-data`` while the local version is above 0 means the data was
  deleted (by a rotation or a destroy): the local state is reset and
  :class:`TrustchainOutdated` tells the caller to restore the trustchain.
* ``push`` writes ``local version + 1``. If another instance won the race the server answers
  ``out-of-sync`` with its document: it is adopted (``save_new_update`` gets it), and, when the
  caller gave a ``merge`` function, the merged document is pushed again at ``server version + 1``
  (up to ``max_attempts`` times). ``PushedData`` and the ``PushResult`` carry the document
  actually stored (the merged one), which is what the caller must keep.

Every change of local state goes through ``save_new_update(event)``, the caller's single place
to apply data and store the version atomically. Push, pull and destroy never overlap on one
SDK (:class:`CloudSyncLocked`), as in Ledger's SDK.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..protocol import userdata
from ..protocol.errors import ProtocolError
from .api import JWT
from .auth import AuthPolicy
from .cloudsync_api import CloudSyncAPI, Document, Status, SyncAnswer
from .credentials import MemberCredentials, Trustchain
from .errors import CloudSyncLocked, CloudSyncOutOfSync, CloudSyncPayloadError, TrustchainOutdated
from .http import HTTPOptions
from .notifications import Notifications
from .trustchain import AfterRotation, TrustchainSDK

DEFAULT_SLUG = "live"


@dataclass(frozen=True, slots=True)
class NewData:
    """The server has a document we did not have: apply it and store its version."""

    data: Any
    version: int


@dataclass(frozen=True, slots=True)
class PushedData:
    """Our push was accepted at this version; ``data`` is the document now stored there (the
    merged one when a merge ran), which the caller must keep as its state."""

    version: int
    data: Any = None


@dataclass(frozen=True, slots=True)
class DeletedData:
    """The server's document is gone: reset the local state to version 0."""


UpdateEvent = NewData | PushedData | DeletedData

Merge = Callable[[Any, Any], Any | Awaitable[Any]]
"""``merge(local, remote) -> document to push``; may be a coroutine function."""


@dataclass(frozen=True, slots=True)
class PullResult:
    status: Status
    version: int | None = None
    data: Any = None
    #: When ``out-of-sync``: the last write time and the writer's client label, if any.
    date: str | None = None
    info: str | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    #: ``updated``, or ``out-of-sync`` when no merge was given and the server was ahead.
    status: Status
    #: The version now stored locally.
    version: int
    #: The server's document, when ``out-of-sync``.
    remote: Any = None
    #: When ``updated``: the document stored at ``version`` (after a merge: the merged one).
    data: Any = None


class CloudSyncSDK:
    """One Cloud Sync document kind (``slug``) for members of a trustchain."""

    def __init__(
        self,
        api_base_url: str,
        *,
        trustchain_sdk: TrustchainSDK,
        get_current_version: Callable[[], int | None],
        save_new_update: Callable[[UpdateEvent], Awaitable[None]],
        slug: str = DEFAULT_SLUG,
        http: HTTPOptions | None = None,
        max_document_size: int = userdata.DEFAULT_MAX_DOCUMENT_SIZE,
    ) -> None:
        self.trustchain_sdk = trustchain_sdk
        self.get_current_version = get_current_version
        self.save_new_update = save_new_update
        self.api = CloudSyncAPI(api_base_url, slug, http)
        self.max_document_size = max_document_size
        self._lock: str | None = None

    async def aclose(self) -> None:
        await self.api.aclose()

    async def __aenter__(self) -> CloudSyncSDK:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- payloads ---------------------------------------------------------------------------

    def encode(self, trustchain: Trustchain, data: Any) -> str:
        try:
            return userdata.encode_cloud_payload(trustchain.wallet_sync_encryption_key, data)
        except (TypeError, ValueError) as exc:
            raise CloudSyncPayloadError(f"the document is not JSON-serialisable: {exc}") from exc

    def decode(self, trustchain: Trustchain, payload: str) -> Any:
        try:
            return userdata.decode_cloud_payload(
                trustchain.wallet_sync_encryption_key, payload, self.max_document_size
            )
        except ProtocolError as exc:
            raise CloudSyncPayloadError(f"the server's document cannot be read: {exc}") from exc

    # --- operations -------------------------------------------------------------------------

    def _acquire(self, name: str) -> None:
        if self._lock is not None:
            raise CloudSyncLocked(f"CloudSyncSDK locked ({self._lock})")
        self._lock = name

    async def pull(self, trustchain: Trustchain, credentials: MemberCredentials) -> PullResult:
        """Fetch the server's document if it is newer than ours (see the module docstring)."""
        self._acquire("pull")
        try:
            current = self.get_current_version()
            answer = await self.trustchain_sdk.with_auth(
                trustchain,
                credentials,
                lambda jwt: self.api.fetch(
                    jwt, trustchain.root_id, trustchain.application_path, current
                ),
            )
            if answer.status is Status.NO_DATA:
                if current:
                    await self.save_new_update(DeletedData())
                    raise TrustchainOutdated(
                        "the cloud data was deleted: the trustchain may have been rotated"
                    )
                return PullResult(Status.NO_DATA)
            if answer.status is Status.UP_TO_DATE:
                return PullResult(Status.UP_TO_DATE, current)
            document = _document(answer.document)
            data = await self._adopt(trustchain, document)
            return PullResult(
                Status.OUT_OF_SYNC, document.version, data, document.date, document.info
            )
        finally:
            self._lock = None

    async def push(
        self,
        trustchain: Trustchain,
        credentials: MemberCredentials,
        data: Any,
        *,
        merge: Merge | None = None,
        max_attempts: int = 3,
    ) -> PushResult:
        """Write ``data`` as the next version (see the module docstring for conflicts)."""
        self._acquire("push")
        try:
            version = (self.get_current_version() or 0) + 1
            for _ in range(max_attempts):
                payload = self.encode(trustchain, data)
                answer = await self._upload(trustchain, credentials, version, payload)
                if answer.status is Status.UPDATED:
                    await self.save_new_update(PushedData(version, data))
                    return PushResult(Status.UPDATED, version, data=data)
                document = _document(answer.document)
                remote = await self._adopt(trustchain, document)
                if merge is None:
                    return PushResult(Status.OUT_OF_SYNC, document.version, remote)
                data = merge(data, remote)
                if inspect.isawaitable(data):
                    data = await data
                version = document.version + 1
            raise CloudSyncOutOfSync(
                f"push lost the version race {max_attempts} times", version=version - 1
            )
        finally:
            self._lock = None

    async def _upload(
        self, trustchain: Trustchain, credentials: MemberCredentials, version: int, payload: str
    ) -> SyncAnswer:
        return await self.trustchain_sdk.with_auth(
            trustchain,
            credentials,
            lambda jwt: self.api.upload(
                jwt, trustchain.root_id, trustchain.application_path, version, payload
            ),
        )

    async def destroy(self, trustchain: Trustchain, credentials: MemberCredentials) -> None:
        """Delete the server's document and reset the local state."""
        self._acquire("destroy")
        try:
            await self.trustchain_sdk.with_auth(
                trustchain,
                credentials,
                lambda jwt: self.api.delete(jwt, trustchain.root_id, trustchain.application_path),
            )
            await self.save_new_update(DeletedData())
        finally:
            self._lock = None

    async def _adopt(self, trustchain: Trustchain, document: Document) -> Any:
        data = self.decode(trustchain, document.payload)
        await self.save_new_update(NewData(data, document.version))
        return data

    def notifications(
        self,
        trustchain: Trustchain,
        credentials: MemberCredentials,
        *,
        reconnect: bool = True,
        max_reconnects: int = 5,
        backoff: float = 0.5,
    ) -> Notifications:
        """Versions announced by the server, as they come (see :mod:`.notifications`).

        Each connection, and each ``JWT expired``, gets a freshly refreshed token. Call it
        from a running event loop (``async with cloud.notifications(...) as versions``).
        """

        async def fresh_token() -> str:
            jwt = await self.trustchain_sdk.get_jwt(trustchain, credentials, AuthPolicy.REFRESH)
            return jwt.access_token

        return Notifications(
            self.api.notifications_url,
            fresh_token,
            reconnect=reconnect,
            max_reconnects=max_reconnects,
            backoff=backoff,
        )

    def rotation_lifecycle(self, get_current_data: Callable[[], Any]) -> CloudSyncLifecycle:
        """A :class:`~.trustchain.TrustchainLifecycle` that moves the data across a rotation."""
        return CloudSyncLifecycle(self, get_current_data)


def _document(document: Document | None) -> Document:
    assert document is not None  # parse_answer guarantees it for out-of-sync
    return document


class CloudSyncLifecycle:
    """Keeps the Cloud Sync document across a key rotation (Ledger's ``trustchainLifecycle``).

    Before the rotation it takes a token of the old trustchain (the new one will not grant
    the old path); after it, it deletes the old document (members still on the old path then
    see ``no-data`` and restore the trustchain), and re-uploads the current data, encrypted
    with the new key, at version 1 on the new path (Ledger PR #18228: the fresh path starts at 1).
    """

    def __init__(self, cloud: CloudSyncSDK, get_current_data: Callable[[], Any]) -> None:
        self.cloud = cloud
        self.get_current_data = get_current_data

    async def on_trustchain_rotation(
        self, sdk: TrustchainSDK, old: Trustchain, credentials: MemberCredentials
    ) -> AfterRotation:
        old_jwt = await sdk.get_jwt(old, credentials, AuthPolicy.REFRESH)

        async def after(new: Trustchain) -> None:
            await self.cloud.api.delete(old_jwt, old.root_id, old.application_path)
            data = self.get_current_data()
            if data is None:
                await self.cloud.save_new_update(DeletedData())
                return
            payload = self.cloud.encode(new, data)
            new_jwt: JWT = await sdk.get_jwt(new, credentials, AuthPolicy.REFRESH)
            answer = await self.cloud.api.upload(
                new_jwt, new.root_id, new.application_path, 1, payload
            )
            if answer.status is Status.UPDATED:
                await self.cloud.save_new_update(PushedData(1, data))
            else:
                await self.cloud._adopt(new, _document(answer.document))

        return after
