"""Several applications in one trustchain, and turning one off (``destroy_application``).

Ledger Sync is application 16; Ledger's newer tools use others in the same trustchain (the
wallet CLI's "ring" is application 17). Scenarios written from Ledger's newer sources:

* ``libs/ledger-key-ring-protocol/tests/scenarios/destroyApplicationKeepsOtherApps.ts``
  (ledger-live @2384fcba, PR #18568) and ``sdk.ts`` ``destroyApplication`` (same commit);
* ``apps/wallet-cli/src/key-ring/crypto.ts`` (ledger-live @05ad897b) for the ring's per-name
  key: HKDF-SHA256(application key, salt ``wallet-cli-domain-v1``, info = name), then
  AES-256-GCM with the 12-byte IV in front of the ciphertext.

All against the real server, with the software device.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledgersync.device.interface import Device
from ledgersync.protocol import parse_path, resolve_tree
from ledgersync.protocol.tree import StreamTree
from ledgersync.sdk.api import JWT
from ledgersync.sdk.auth import AuthPolicy
from ledgersync.sdk.cloudsync import CloudSyncSDK, UpdateEvent
from ledgersync.sdk.credentials import TrustchainResultType
from ledgersync.sdk.errors import (
    LedgerAPI4xx,
    TrustchainEjected,
    TrustchainNotAllowed,
    TrustchainOutdated,
)
from ledgersync.sdk.trustchain import TrustchainSDK

from ..support.devices import software_device
from ..support.instances import Instance
from ..support.servers import RunningServer

LEDGER_SYNC = 16
RING = 17

AppFactory = Callable[..., Instance]


@pytest.fixture
async def apps(server: RunningServer) -> AsyncIterator[AppFactory]:
    """``apps("name", application_id)`` → an instance of that application."""
    created: list[TrustchainSDK] = []

    def make(name: str, application_id: int = LEDGER_SYNC) -> Instance:
        sdk = TrustchainSDK(server.url, name=name, application_id=application_id)
        created.append(sdk)
        return Instance(sdk, sdk.init_member_credentials())

    yield make
    for sdk in created:
        await sdk.aclose()


async def join(instance: Instance, device: Device) -> TrustchainResultType:
    result = await instance.sdk.get_or_create_trustchain(device, instance.credentials)
    instance.trustchain = result.trustchain
    return result.type


async def tree_of(instance: Instance) -> StreamTree:
    """The trustchain as the server holds it now, read with ``instance``'s token."""
    jwt = await instance.sdk.get_jwt(instance.tc, instance.credentials, AuthPolicy.NO_CACHE)
    streams = await instance.sdk.api.get_trustchain(jwt, instance.tc.root_id)
    return resolve_tree([bytes.fromhex(value) for value in streams.values()])


class Local:
    """The local state a Cloud Sync client keeps (version and data)."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.data: Any = None

    def current(self) -> int | None:
        return self.version

    async def save(self, event: UpdateEvent) -> None:
        self.version = getattr(event, "version", 0)
        self.data = getattr(event, "data", None)


def cloud(server: RunningServer, instance: Instance) -> tuple[CloudSyncSDK, Local]:
    local = Local()
    sdk = CloudSyncSDK(
        server.url,
        trustchain_sdk=instance.sdk,
        get_current_version=local.current,
        save_new_update=local.save,
    )
    return sdk, local


def ring_key(application_key: bytes, name: str) -> bytes:
    """The wallet CLI ring's key for one name (HKDF-SHA256, salt ``wallet-cli-domain-v1``)."""
    hkdf = HKDF(hashes.SHA256(), 32, salt=b"wallet-cli-domain-v1", info=name.encode())
    return hkdf.derive(application_key)


def ring_encrypt(key: bytes, plaintext: bytes) -> bytes:
    iv = os.urandom(12)
    return iv + AESGCM(key).encrypt(iv, plaintext, None)


def ring_decrypt(key: bytes, blob: bytes) -> bytes:
    return AESGCM(key).decrypt(blob[:12], blob[12:], None)


async def test_destroy_application_keeps_the_other_application(
    apps: AppFactory, server: RunningServer
) -> None:
    """destroyApplicationKeepsOtherApps.ts: turning Ledger Sync off closes only its stream."""
    device, _ = software_device()
    sync1, sync2 = apps("Sync instance 1"), apps("Sync instance 2")
    ring = apps("Ring member", RING)
    assert await join(sync1, device) is TrustchainResultType.CREATED
    assert await join(sync2, device) is TrustchainResultType.UPDATED
    assert await join(ring, device) is TrustchainResultType.UPDATED
    assert sync1.tc.root_id == ring.tc.root_id
    old = sync1.tc

    assert await sync1.sdk.destroy_application(sync1.tc, sync1.credentials) is False
    tree = await tree_of(ring)
    closed = tree.get(parse_path(old.application_path))
    assert closed is not None and closed.closed
    height = closed.height
    assert tree.applications()[RING].closed is False
    assert not tree.has_another_open_application(RING)  # Ledger Sync's stream is closed
    assert tree.has_another_open_application(LEDGER_SYNC)

    # Idempotent: no second CloseStream (the closed stream's member cannot log in any more).
    assert await sync1.sdk.destroy_application(old, sync1.credentials) is False
    after = (await tree_of(ring)).get(parse_path(old.application_path))
    assert after is not None and after.height == height

    # Every Ledger Sync instance reconciles to "ejected"; the ring application still works.
    for instance in (sync1, sync2):
        instance.sdk.invalidate_jwt()
        with pytest.raises(TrustchainEjected):
            await instance.sdk.restore_trustchain(old, instance.credentials)
    ring.sdk.invalidate_jwt()
    members = await ring.sdk.get_members(ring.tc, ring.credentials)
    assert [member.id for member in members] == [ring.credentials.pubkey]
    assert await ring.sdk.restore_trustchain(ring.tc, ring.credentials) == ring.tc

    # Activating Ledger Sync again reopens it in the same trustchain, at the next index.
    assert await join(sync1, device) is TrustchainResultType.UPDATED
    assert sync1.tc.root_id == old.root_id
    assert sync1.tc.application_path == "m/0'/16'/1'"
    assert sync1.tc.wallet_sync_encryption_key != old.wallet_sync_encryption_key
    members = await sync1.sdk.get_members(sync1.tc, sync1.credentials)
    assert [member.id for member in members] == [sync1.credentials.pubkey]
    with pytest.raises((TrustchainEjected, TrustchainNotAllowed)):
        await sync2.sdk.restore_trustchain(sync1.tc, sync2.credentials)


async def test_destroy_application_of_the_last_open_one_deletes_the_trustchain(
    apps: AppFactory, server: RunningServer
) -> None:
    device, _ = software_device()
    sync, ring = apps("Sync"), apps("Ring", RING)
    await join(sync, device)
    await join(ring, device)
    assert await ring.sdk.destroy_application(ring.tc, ring.credentials) is False
    assert await sync.sdk.destroy_application(sync.tc, sync.credentials) is True
    with pytest.raises((TrustchainEjected, TrustchainNotAllowed)):
        await sync.sdk.restore_trustchain(sync.tc, sync.credentials)
    # The device has no trustchain any more: activating creates a new one.
    assert await join(sync, device) is TrustchainResultType.CREATED


async def test_destroy_application_alone_deletes_the_trustchain(apps: AppFactory) -> None:
    """With Ledger Sync the only application, turning it off is Ledger's old behaviour."""
    device, _ = software_device()
    first, second = apps("Linux"), apps("Mac")
    await join(first, device)
    await join(second, device)
    assert await first.sdk.destroy_application(first.tc, first.credentials) is True
    with pytest.raises((TrustchainEjected, TrustchainNotAllowed)):
        await second.sdk.restore_trustchain(second.tc, second.credentials)


async def test_a_closed_application_keeps_no_cloud_sync_data(
    apps: AppFactory, server: RunningServer
) -> None:
    """The closed stream's path holds nothing; the other application's document stays."""
    device, _ = software_device()
    sync1, sync2, ring = apps("Sync 1"), apps("Sync 2"), apps("Ring", RING)
    for instance in (sync1, sync2, ring):
        await join(instance, device)
    sync_cloud, _ = cloud(server, sync1)
    ring_cloud, _ = cloud(server, ring)
    reader, reader_state = cloud(server, sync2)
    try:
        await sync_cloud.push(sync1.tc, sync1.credentials, {"accounts": ["a"]})
        await ring_cloud.push(ring.tc, ring.credentials, {"ring": 1})
        assert (await reader.pull(sync2.tc, sync2.credentials)).data == {"accounts": ["a"]}
        token = await sync2.sdk.get_jwt(sync2.tc, sync2.credentials)  # taken before the close

        await sync1.sdk.destroy_application(sync1.tc, sync1.credentials)

        with pytest.raises(LedgerAPI4xx, match="path does not match"):
            await reader.api.upload(token, sync2.tc.root_id, sync2.tc.application_path, 2, "AAAA")
        with pytest.raises((TrustchainOutdated, TrustchainEjected)):
            await reader.pull(sync2.tc, sync2.credentials)
        assert reader_state.version in (0, 1)
        ring.sdk.invalidate_jwt()
        fresh, _ = cloud(server, ring)
        try:
            assert (await fresh.pull(ring.tc, ring.credentials)).data == {"ring": 1}
        finally:
            await fresh.aclose()
    finally:
        for sdk in (sync_cloud, ring_cloud, reader):
            await sdk.aclose()


async def test_two_applications_stay_separate(apps: AppFactory, server: RunningServer) -> None:
    """Members, keys, tokens and Cloud Sync documents of applications 16 and 17 are apart;
    a rotation of one leaves the other's stream and key as they were."""
    device, _ = software_device()
    sync1, sync2 = apps("Sync 1"), apps("Sync 2")
    ring1, ring2 = apps("Ring 1", RING), apps("Ring 2", RING)
    for instance in (sync1, sync2, ring1, ring2):
        await join(instance, device)
    assert {i.tc.root_id for i in (sync1, sync2, ring1, ring2)} == {sync1.tc.root_id}
    assert sync1.tc.application_path == "m/0'/16'/0'"
    assert ring1.tc.application_path == "m/0'/17'/0'"
    assert sync1.tc.wallet_sync_encryption_key != ring1.tc.wallet_sync_encryption_key

    # Members: each application lists its own instances only.
    sync_members = [m.id for m in await sync1.sdk.get_members(sync1.tc, sync1.credentials)]
    ring_members = [m.id for m in await ring1.sdk.get_members(ring1.tc, ring1.credentials)]
    assert sync_members == [sync1.credentials.pubkey, sync2.credentials.pubkey]
    assert ring_members == [ring1.credentials.pubkey, ring2.credentials.pubkey]

    # Tokens: a member's token names its own application's path only.
    ring_jwt: JWT = await ring1.sdk.get_jwt(ring1.tc, ring1.credentials, AuthPolicy.NO_CACHE)
    assert ring_jwt.permissions == {ring1.tc.root_id: {ring1.tc.application_path: ["owner"]}}
    ring_cloud, _ = cloud(server, ring1)
    sync_cloud, _ = cloud(server, sync1)
    try:
        with pytest.raises(LedgerAPI4xx, match="path does not match"):
            await ring_cloud.api.fetch(ring_jwt, sync1.tc.root_id, sync1.tc.application_path, None)

        # Cloud Sync: one document per application path; the ring keeps a secret under its
        # per-name key, which the other ring member reads and Ledger Sync's key does not.
        key = ring_key(ring1.tc.wallet_sync_encryption_key, "alice")
        assert key != ring_key(ring1.tc.wallet_sync_encryption_key, "bob")
        secret = ring_encrypt(key, b"ring secret").hex()
        await ring_cloud.push(ring1.tc, ring1.credentials, {"alice": secret})
        await sync_cloud.push(sync1.tc, sync1.credentials, {"accounts": []})
        ring_reader, _ = cloud(server, ring2)
        try:
            pulled = await ring_reader.pull(ring2.tc, ring2.credentials)
        finally:
            await ring_reader.aclose()
        other_key = ring_key(ring2.tc.wallet_sync_encryption_key, "alice")
        assert ring_decrypt(other_key, bytes.fromhex(pulled.data["alice"])) == b"ring secret"
        wrong = ring_key(sync1.tc.wallet_sync_encryption_key, "alice")
        with pytest.raises(InvalidTag):
            ring_decrypt(wrong, bytes.fromhex(pulled.data["alice"]))

        # Removing a member of Ledger Sync rotates Ledger Sync only.
        sync2_member = next(
            m
            for m in await sync1.sdk.get_members(sync1.tc, sync1.credentials)
            if m.id == sync2.credentials.pubkey
        )
        rotated = await sync1.sdk.remove_member(device, sync1.tc, sync1.credentials, sync2_member)
        assert rotated.application_path == "m/0'/16'/1'"
        ring1.sdk.invalidate_jwt()
        assert await ring1.sdk.restore_trustchain(ring1.tc, ring1.credentials) == ring1.tc
        tree = await tree_of(ring1)
        assert sorted(tree.applications()) == [LEDGER_SYNC, RING]
        assert tree.applications()[RING].path_text == "m/0'/17'/0'"
        assert tree.applications()[RING].closed is False
        assert [m.id for m in await ring2.sdk.get_members(ring2.tc, ring2.credentials)] == (
            ring_members
        )
        # The ring's document is where it was, readable with the unchanged key.
        fresh, _ = cloud(server, ring1)
        try:
            assert (await fresh.pull(ring1.tc, ring1.credentials)).data == {"alice": secret}
        finally:
            await fresh.aclose()
    finally:
        await ring_cloud.aclose()
        await sync_cloud.aclose()
