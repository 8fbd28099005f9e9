"""A wallet instance at work: sync rounds, the live watch loop, activation, pairing, members,
key rotation and deactivation, over the SDK.

A sync round (:meth:`Wallet.sync`), under the instance's lock:

1. pull the server's document (one GET when nothing is new, the member token is cached);
2. merge it three-way with the local data, the base being the last synced document
   (:mod:`.merge`);
3. push the merge when it differs from the server's document (on a lost version race the
   newer server document is merged in again, and so on);
4. save the base, its version and the local data in one atomic write.

Lifecycle: a key rotation by another instance (``TrustchainOutdated``) restores the trustchain
and continues with the data re-encrypted under the new key; an instance removed by another, or
whose trustchain was deleted, purges its credentials and data and raises
:class:`~.errors.InstancePurged` saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..device.interface import Device
from ..sdk import (
    CloudSyncSDK,
    DeletedData,
    DeviceCallbacks,
    DigitsRequest,
    HTTPOptions,
    MemberCredentials,
    NewData,
    PushedData,
    Status,
    Trustchain,
    TrustchainMember,
    TrustchainResultType,
    TrustchainSDK,
    UpdateEvent,
    pair_as_candidate,
    pair_as_host,
)
from ..sdk import errors as sdk_errors
from .document import Document, InvalidModule, check_document, quarantined, same
from .errors import (
    AlreadyActivated,
    InstanceBusy,
    InstancePurged,
    MemberSelectionError,
    NotActivated,
    ServerUnreachable,
    SyncFailed,
    WalletError,
)
from .instances import DEFAULT_LOCK_TIMEOUT, InstanceRecord, InstanceStore, LockedInstance, utc_now
from .merge import Change, Conflict, changes, merge

T = TypeVar("T")

DEFAULT_POLL_INTERVAL = 10.0  # as Ledger Live
LOCAL_CHECK_INTERVAL = 0.2  # how often a watcher looks for other processes' local edits

EJECTED_MESSAGE = (
    "this instance is no longer a member of its trustchain: another instance removed it, or "
    "turned Ledger Sync off (deleted the trustchain); its keys and synced data were deleted "
    "here. Activate it again or pair it with another instance to sync again"
)


@dataclass(frozen=True)
class SyncReport:
    """What one round did."""

    version: int
    #: Entries the server's document changed here.
    received: list[Change] = field(default_factory=list)
    #: Entries this round sent to the server.
    sent: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    pushed: bool = False
    #: The trustchain's key was rotated by another instance; this one restored it.
    rotated: bool = False
    quarantined: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.received or self.sent or self.conflicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "pushed": self.pushed,
            "rotated": self.rotated,
            "received": [change.to_json() for change in self.received],
            "sent": [change.to_json() for change in self.sent],
            "conflicts": [conflict.to_json() for conflict in self.conflicts],
            "quarantined": self.quarantined,
        }


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    permissions: int
    is_self: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "permissions": self.permissions,
            "self": self.is_self,
        }


@dataclass(frozen=True)
class ActivationReport:
    #: ``created`` (a new trustchain), ``joined`` (this member was added) or ``restored``.
    outcome: str
    trustchain_id: str
    sync: SyncReport


class Wallet:
    """One instance of ``store``, opened to sync. Use as ``async with Wallet(...) as wallet``."""

    def __init__(
        self,
        store: InstanceStore,
        name: str | None,
        *,
        http: HTTPOptions | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.store = store
        self.name = store.select(name)
        self.lock_timeout = lock_timeout
        self._http = http
        self._sdk: TrustchainSDK | None = None
        self._cloud: CloudSyncSDK | None = None
        # What the SDK told us during the current operation (its save_new_update).
        self._version = 0
        self._remote: Document | None = None
        self._local_for_rotation: Document | None = None
        self._stamp: tuple[int, int] = (0, 0)
        self._checked_empty: Trustchain | None = None

    async def __aenter__(self) -> Wallet:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._cloud is not None:
            await self._cloud.aclose()
        if self._sdk is not None:
            await self._sdk.aclose()
        self._sdk = self._cloud = None

    # --- plumbing ---------------------------------------------------------------------------

    def record(self) -> InstanceRecord:
        return self.store.load(self.name)

    def _sdks(self, record: InstanceRecord) -> tuple[TrustchainSDK, CloudSyncSDK]:
        if self._sdk is None or self._cloud is None:
            self._sdk = TrustchainSDK(record.server, name=record.member_name, http=self._http)
            self._cloud = CloudSyncSDK(
                record.server,
                trustchain_sdk=self._sdk,
                get_current_version=lambda: self._version,
                save_new_update=self._on_update,
                http=self._http,
            )
            self._sdk.lifecycle = self._cloud.rotation_lifecycle(lambda: self._local_for_rotation)
        return self._sdk, self._cloud

    async def _on_update(self, event: UpdateEvent) -> None:
        if isinstance(event, NewData):
            try:
                self._remote = check_document(event.data)
            except InvalidModule as exc:
                raise SyncFailed(f"the server's document cannot be used: {exc}") from exc
            self._version = event.version
        elif isinstance(event, PushedData):
            self._remote, self._version = event.data, event.version
        elif isinstance(event, DeletedData):
            self._remote, self._version = None, 0

    def _locked(self) -> contextlib.AbstractAsyncContextManager[LockedInstance]:
        return self.store.alocked(self.name, self.lock_timeout)

    def _save(self, locked: LockedInstance, record: InstanceRecord) -> None:
        locked.save(record)
        self._stamp = self.store.stamp(self.name)

    async def _call(self, locked: LockedInstance | None, job: Awaitable[T]) -> T:
        """Run an SDK call, turning its errors into wallet errors (and purging if ejected)."""
        try:
            return await job
        except sdk_errors.TrustchainEjected as exc:
            if locked is None:
                raise InstancePurged(EJECTED_MESSAGE, "removed") from exc
            raise self._purge(locked, "removed", EJECTED_MESSAGE) from exc
        except sdk_errors.NetworkError as exc:
            server = self.record().server
            raise ServerUnreachable(
                f"cannot reach the server at {server} ({exc}); check that it is running and "
                "that the URL is right"
            ) from exc
        except sdk_errors.UserRefusedOnDevice as exc:
            raise SyncFailed("the request was refused on the device; nothing was changed") from exc
        except sdk_errors.TrustchainNotAllowed as exc:
            raise SyncFailed(
                "this device does not hold this trustchain's seed (wrong Ledger or recovery "
                "phrase); nothing was changed"
            ) from exc
        except sdk_errors.InvalidDigitsError as exc:
            raise SyncFailed(
                "the digits do not match the ones shown on the other instance; nothing was "
                "changed, start the pairing again"
            ) from exc
        except sdk_errors.CloudSyncPayloadError as exc:
            raise SyncFailed(str(exc)) from exc
        except sdk_errors.LedgerAPI5xx as exc:
            raise SyncFailed(f"the server failed ({exc}); try again later") from exc
        except sdk_errors.LedgerSyncError as exc:
            raise SyncFailed(f"{type(exc).__name__}: {exc}") from exc

    def _purge(self, locked: LockedInstance, reason: str, message: str) -> InstancePurged:
        self._save(locked, locked.read().purge(reason, message))
        return InstancePurged(message, reason)

    @staticmethod
    def _active(record: InstanceRecord) -> tuple[Trustchain, MemberCredentials]:
        if record.trustchain is None or record.credentials is None:
            if record.purged is not None:
                raise NotActivated(
                    f"instance {record.name!r} is not active: {record.purged.message}"
                )
            raise NotActivated(
                f"instance {record.name!r} is not active yet: run `ledgersync activate "
                "--device …` or pair it with `ledgersync pair`"
            )
        return record.trustchain, record.credentials

    # --- local edits ------------------------------------------------------------------------

    async def edit(self, change: Callable[[Document], Document]) -> InstanceRecord:
        """Apply ``change`` to the local data and save it (synced by the next round)."""
        async with self._locked() as locked:
            record = locked.read()
            updated = replace(record, local=change(record.local))
            if not same(updated.local, record.local):
                self._save(locked, updated)
            return updated

    # --- sync -------------------------------------------------------------------------------

    async def sync(self) -> SyncReport:
        """One round (see the module docstring)."""
        async with self._locked() as locked:
            return await self._sync_locked(locked)

    async def _pull(
        self, locked: LockedInstance, trustchain: Trustchain, credentials: MemberCredentials
    ) -> Status:
        _, cloud = self._sdks(locked.read())
        result = await self._call(locked, cloud.pull(trustchain, credentials))
        return result.status

    async def _restore(
        self, locked: LockedInstance, trustchain: Trustchain, credentials: MemberCredentials
    ) -> Trustchain:
        sdk, _ = self._sdks(locked.read())
        try:
            return await self._call(locked, sdk.restore_trustchain(trustchain, credentials))
        except SyncFailed as exc:
            if isinstance(exc.__cause__, sdk_errors.TrustchainNotFound):
                raise self._purge(locked, "deleted", EJECTED_MESSAGE) from exc
            raise

    async def _sync_locked(self, locked: LockedInstance) -> SyncReport:
        record = locked.read()
        trustchain, credentials = self._active(record)
        _, cloud = self._sdks(record)
        self._version, self._remote = record.version, record.base
        rotated = False
        try:
            status = await self._pull(locked, trustchain, credentials)
        except SyncFailed as exc:
            if not isinstance(exc.__cause__, sdk_errors.TrustchainOutdated):
                raise
            # The key was rotated (or the data deleted): restore, then pull from version 0.
            restored = await self._restore(locked, trustchain, credentials)
            rotated = restored != trustchain
            trustchain, self._version, self._remote = restored, 0, None
            status = await self._pull(locked, trustchain, credentials)
        if status is Status.NO_DATA and not rotated and self._checked_empty != trustchain:
            # Nothing stored yet: the stream may have been rotated (or this member removed)
            # before any data existed, which an empty old path cannot tell us. Checked once
            # per trustchain and Wallet, so that idle rounds stay one GET.
            self._checked_empty = trustchain
            restored = await self._restore(locked, trustchain, credentials)
            if restored != trustchain:
                rotated, trustchain, self._version, self._remote = True, restored, 0, None
                status = await self._pull(locked, trustchain, credentials)
        remote = record.base if status is Status.UP_TO_DATE else self._remote
        # Right after a rotation the new path may hold nothing yet (the remover uploads the
        # re-encrypted data after closing the old stream): nothing there is not an emptied
        # document, so merge without a base (every local entry stays) and push it first.
        base = None if rotated and status is Status.NO_DATA else record.base
        result = merge(base, record.local, remote)
        conflicts = list(result.conflicts)
        document = result.document
        pushed = False
        if not same(document, remote or {}):
            last_remote = remote

            def merge_again(mine: Any, theirs: Any) -> Any:
                nonlocal last_remote
                again = merge(last_remote, mine, check_document(theirs))
                conflicts.extend(again.conflicts)
                last_remote = theirs
                return again.document

            try:
                answer = await self._call(
                    locked,
                    cloud.push(trustchain, credentials, document, merge=merge_again),
                )
            except InvalidModule as exc:
                raise SyncFailed(f"the server's document cannot be used: {exc}") from exc
            if answer.status is not Status.UPDATED:  # pragma: no cover - merge always given
                raise SyncFailed("the server kept refusing our version")
            document, pushed = answer.data, True
            remote_before_push = last_remote
        else:
            remote_before_push = remote
        self._save(
            locked,
            replace(
                locked.read(),
                trustchain=trustchain,
                base=document if (pushed or remote is not None) else None,
                version=self._version,
                local=document,
                last_sync=utc_now(),
            ),
        )
        return SyncReport(
            version=self._version,
            received=changes(record.local, document),
            sent=changes(remote_before_push, document) if pushed else [],
            conflicts=conflicts,
            pushed=pushed,
            rotated=rotated,
            quarantined=quarantined(document),
        )

    # --- live -------------------------------------------------------------------------------

    async def watch(
        self,
        stop: asyncio.Event,
        *,
        on_report: Callable[[SyncReport], None],
        on_error: Callable[[WalletError], None],
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        local_interval: float = LOCAL_CHECK_INTERVAL,
        on_listening: Callable[[], None] = lambda: None,
    ) -> None:
        """Sync until ``stop`` is set: at once, then on every server notification of a new
        version, on every local edit by another process, and every ``poll_interval`` seconds.
        ``on_listening`` is called each time the server's notifications are subscribed to
        (from then on, a change by another instance arrives without waiting for the poll).

        Errors that may pass (server down, instance busy) go to ``on_error`` and the loop
        goes on; :class:`~.errors.InstancePurged` and :class:`~.errors.NotActivated` end it.
        """
        wake = asyncio.Event()
        notifier: asyncio.Task[None] | None = None
        watched: Trustchain | None = None
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    on_report(await self.sync())
                except (ServerUnreachable, SyncFailed, InstanceBusy) as exc:
                    on_error(exc)
                record = self.record()
                if record.trustchain != watched or notifier is None or notifier.done():
                    if notifier is not None:
                        notifier.cancel()
                        await asyncio.gather(notifier, return_exceptions=True)
                    watched = record.trustchain
                    notifier = asyncio.create_task(self._listen(record, wake, on_listening))
                await self._wait(stop, wake, poll_interval, local_interval)
        finally:
            if notifier is not None:
                notifier.cancel()
                await asyncio.gather(notifier, return_exceptions=True)

    async def _listen(
        self, record: InstanceRecord, wake: asyncio.Event, on_listening: Callable[[], None]
    ) -> None:
        """Wake the loop whenever the server announces a version we do not have."""
        trustchain, credentials = self._active(record)
        _, cloud = self._sdks(record)
        with contextlib.suppress(sdk_errors.LedgerSyncError, OSError, WalletError):
            async with cloud.notifications(trustchain, credentials) as versions:
                async for notice in versions.notices():
                    if notice.subscribed:
                        # The current version, answering a token: on every (re)connection
                        # and renewal, each after a fresh token (a Key Ring refresh, which
                        # would have failed had the trustchain been deleted meanwhile).
                        on_listening()
                    elif notice.version == 0:
                        # Deleted since we subscribed: the document, by a rotation closing its
                        # stream, or the whole trustchain. An instance that holds no data
                        # (version 0 as well) would see no change: check the trustchain again.
                        self._checked_empty = None
                        wake.set()
                    if notice.version != self.record().version:
                        wake.set()

    async def _wait(
        self, stop: asyncio.Event, wake: asyncio.Event, poll_interval: float, local: float
    ) -> None:
        deadline = time.monotonic() + poll_interval
        while not stop.is_set() and not wake.is_set():
            if self.store.stamp(self.name) != self._stamp:
                return  # another process edited the instance
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            await asyncio.wait(
                waiters, timeout=min(local, remaining), return_when="FIRST_COMPLETED"
            )
            for waiter in waiters:
                waiter.cancel()

    # --- trustchain lifecycle ---------------------------------------------------------------

    async def activate(
        self, device: Device, *, callbacks: DeviceCallbacks | None = None
    ) -> ActivationReport:
        """Create the trustchain with ``device``, or join the one it already has; then merge
        this instance's data with what the trustchain's other instances synced."""
        record = self.record()
        if record.active:
            raise AlreadyActivated(
                f"instance {record.name!r} is already active (trustchain "
                f"{record.trustchain.root_id[:18]}…)"  # type: ignore[union-attr]
            )
        credentials = record.credentials or MemberCredentials.generate()
        sdk, _ = self._sdks(record)
        result = await self._call(
            None, sdk.get_or_create_trustchain(device, credentials, callbacks=callbacks)
        )
        await self._join(result.trustchain, credentials)
        outcome = {
            TrustchainResultType.CREATED: "created",
            TrustchainResultType.UPDATED: "joined",
            TrustchainResultType.RESTORED: "restored",
        }[result.type]
        return ActivationReport(outcome, result.trustchain.root_id, await self.sync())

    async def _join(self, trustchain: Trustchain, credentials: MemberCredentials) -> None:
        async with self._locked() as locked:
            current = locked.read()
            if current.active:
                raise AlreadyActivated(f"instance {current.name!r} was activated meanwhile")
            self._save(
                locked,
                replace(
                    current,
                    credentials=credentials,
                    trustchain=trustchain,
                    base=None,  # joining merges: everything here counts as a local addition
                    version=0,
                    purged=None,
                ),
            )

    async def pair_host(
        self, *, on_url: Callable[[str], Any], on_digits: Callable[[str], Any]
    ) -> ActivationReport:
        """Show a pairing URL (as a QR code); whichever side has no trustchain joins."""
        return await self._pair(
            lambda sdk, credentials, ours: pair_as_host(
                sdk, credentials, ours, on_display_qr_code=on_url, on_display_digits=on_digits
            )
        )

    async def pair_join(
        self, url: str, *, get_digits: Callable[[DigitsRequest], str | Awaitable[str]]
    ) -> ActivationReport:
        """Pair with the URL the other instance shows; ``get_digits`` returns its 3 digits."""
        return await self._pair(
            lambda sdk, credentials, ours: pair_as_candidate(
                sdk, credentials, ours, scanned_url=url, on_request_qr_code_input=get_digits
            )
        )

    async def _pair(
        self,
        pairing: Callable[
            [TrustchainSDK, MemberCredentials, Trustchain | None], Awaitable[Trustchain]
        ],
    ) -> ActivationReport:
        record = self.record()
        credentials = record.credentials or MemberCredentials.generate()
        ours = record.trustchain if record.active else None
        sdk, _ = self._sdks(record)
        received = await self._call(None, pairing(sdk, credentials, ours))
        return await self._after_pairing(ours, received, credentials)

    async def _after_pairing(
        self, ours: Trustchain | None, received: Trustchain, credentials: MemberCredentials
    ) -> ActivationReport:
        if ours is None:
            await self._join(received, credentials)
            return ActivationReport("joined", received.root_id, await self.sync())
        return ActivationReport("added", ours.root_id, await self.sync())

    async def members(self) -> list[Member]:
        record = self.record()
        trustchain, credentials = self._active(record)
        sdk, _ = self._sdks(record)
        async with self._locked() as locked:
            return await self._members(locked, sdk, trustchain, credentials)

    async def _members(
        self,
        locked: LockedInstance,
        sdk: TrustchainSDK,
        trustchain: Trustchain,
        credentials: MemberCredentials,
    ) -> list[Member]:
        found = await self._call(locked, sdk.get_members(trustchain, credentials))
        return [
            Member(member.id, member.name, member.permissions, member.id == credentials.pubkey)
            for member in found
        ]

    @staticmethod
    def select_member(members: list[Member], selector: str) -> Member:
        """The member named ``selector`` exactly, or whose public key starts with it."""
        by_name = [member for member in members if member.name == selector]
        candidates = by_name or [
            member for member in members if member.id.startswith(selector.lower())
        ]
        if len(selector) < 4 and not by_name:
            candidates = []
        if len(candidates) == 1:
            return candidates[0]
        listing = ", ".join(f"{member.name} ({member.id[:12]}…)" for member in members)
        if not candidates:
            raise MemberSelectionError(
                f"no member is named {selector!r} or has a public key starting with it "
                f"(at least 4 hex digits); members: {listing}"
            )
        raise MemberSelectionError(
            f"{selector!r} matches several members; give more of the public key. Members: {listing}"
        )

    async def remove_member(
        self,
        device: Device,
        selector: str,
        *,
        callbacks: DeviceCallbacks | None = None,
        on_progress: Callable[[str], None] = lambda step: None,
    ) -> tuple[Member, str]:
        """Remove a member with ``device``: the key is rotated and the data re-encrypted.
        Returns the member removed and the new application path."""
        async with self._locked() as locked:
            on_progress("syncing the data first")
            await self._sync_locked(locked)
            record = locked.read()
            trustchain, credentials = self._active(record)
            sdk, _ = self._sdks(record)
            listed = await self._members(locked, sdk, trustchain, credentials)
            member = self.select_member(listed, selector)
            if member.is_self:
                raise MemberSelectionError(
                    "this instance cannot remove itself: run `ledgersync deactivate` to turn "
                    "Ledger Sync off, or remove it from another instance"
                )
            on_progress("rotating the key on the device (approve on the device)")
            self._local_for_rotation = record.local
            self._version, self._remote = record.version, record.base
            new = await self._call(
                locked,
                sdk.remove_member(
                    device,
                    trustchain,
                    credentials,
                    TrustchainMember(member.id, member.name, member.permissions),
                    callbacks=callbacks,
                ),
            )
            on_progress("data re-encrypted under the new key")
            self._save(
                locked,
                replace(
                    locked.read(),
                    trustchain=new,
                    base=self._remote,
                    version=self._version,
                    local=self._remote if self._remote is not None else record.local,
                    last_sync=utc_now(),
                ),
            )
            return member, new.application_path

    async def deactivate(self) -> None:
        """Turn Ledger Sync off for every instance: close this application's stream
        (``destroy_application``: the trustchain itself is deleted unless another
        application's stream stays open in it; either way the server drops the stream's
        documents), delete the cloud document too for servers that keep it, then purge."""
        async with self._locked() as locked:
            record = locked.read()
            trustchain, credentials = self._active(record)
            sdk, cloud = self._sdks(record)
            # The stream first: the others then see their data gone *and* their stream
            # closed at once, so none of them mistakes it for an emptied document.
            jwt = None
            with contextlib.suppress(InstancePurged):  # already gone: purge all the same
                try:
                    jwt = await self._call(None, sdk.get_jwt(trustchain, credentials))
                    await self._call(None, sdk.destroy_application(trustchain, credentials))
                except SyncFailed as exc:
                    if not isinstance(exc.__cause__, sdk_errors.TrustchainOutdated):
                        raise
            if jwt is not None:
                with contextlib.suppress(sdk_errors.LedgerSyncError):
                    await cloud.api.delete(jwt, trustchain.root_id, trustchain.application_path)
            self._save(
                locked,
                record.purge("deactivated", "Ledger Sync was turned off from this instance"),
            )

    # --- status -----------------------------------------------------------------------------

    async def status(self, *, online: bool = True) -> dict[str, Any]:
        """What ``ledgersync status`` shows (see docs/wallet.md for the shape)."""
        record = self.record()
        pending = changes(record.base, record.local)
        members: list[dict[str, Any]] | None = None
        server_state = "not checked"
        if online and record.active:
            try:
                members = [member.to_json() for member in await self.members()]
                server_state = "reachable"
            except ServerUnreachable:
                server_state = "unreachable"
        return {
            "instance": record.name,
            "server": record.server,
            "serverState": server_state,
            "memberName": record.member_name,
            "memberId": record.credentials.pubkey if record.credentials else None,
            "active": record.active,
            "trustchainId": record.trustchain.root_id if record.trustchain else None,
            "applicationPath": record.trustchain.application_path if record.trustchain else None,
            "members": members,
            "version": record.version,
            "lastSync": record.last_sync,
            "pendingChanges": len(pending),
            "pending": [change.to_json() for change in pending],
            "quarantined": quarantined(record.local),
            "purged": (
                {
                    "reason": record.purged.reason,
                    "message": record.purged.message,
                    "at": record.purged.at,
                }
                if record.purged
                else None
            ),
        }
