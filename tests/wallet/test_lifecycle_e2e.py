"""Wallet lifecycle against a real server: rotation, ejection, deletion, deactivation,
quarantine, live watching, and the cost of a round with nothing to do."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ledgersync.device.software import SoftwareDevice
from ledgersync.protocol import userdata
from ledgersync.sdk import HTTPOptions, TrustchainSDK
from ledgersync.testing import LocalServer
from ledgersync.wallet import (
    InstancePurged,
    InstanceStore,
    ModuleQuarantined,
    NotActivated,
    ServerUnreachable,
    SyncReport,
    Wallet,
    WalletError,
    account_descriptor,
    add_account,
    label_records,
    rename_account,
    set_label,
)

from ..support.wallets import ETH, WalletFactory

OTHER = "js:2:ethereum:0x00000000000000000000000000000000000000aa:"


async def three(wallets: WalletFactory, device: SoftwareDevice) -> list[Wallet]:
    members = [wallets(name) for name in ("laptop", "phone", "tablet")]
    await members[0].edit(lambda doc: add_account(doc, account_descriptor(ETH), "Main"))
    for member in members:
        await member.activate(device)
    return members


async def test_rotation_by_another_instance(wallets: WalletFactory, device: SoftwareDevice) -> None:
    laptop, phone, tablet = await three(wallets, device)
    await phone.edit(lambda doc: rename_account(doc, ETH, "edited before the rotation"))
    removed, path = await laptop.remove_member(device, "tablet")
    assert (removed.name, path) == ("tablet", "m/0'/16'/1'")
    assert laptop.record().trustchain.application_path == path  # type: ignore[union-attr]

    # The phone restores the rotated trustchain, keeps its pending edit, and pushes it.
    report = await phone.sync()
    assert report.rotated and report.pushed and not report.conflicts
    assert phone.record().trustchain == laptop.record().trustchain
    await laptop.sync()
    assert laptop.record().local["accountNames"] == {ETH: "edited before the rotation"}

    # The tablet was removed: it purges and says why.
    with pytest.raises(InstancePurged, match="no longer a member") as info:
        await tablet.sync()
    assert info.value.reason == "removed"
    purged = tablet.record()
    assert not purged.active and purged.local == {} and purged.credentials is None
    with pytest.raises(NotActivated, match="no longer a member"):
        await tablet.sync()


async def test_a_rotation_seen_before_the_data_is_re_uploaded_loses_nothing(
    wallets: WalletFactory, device: SoftwareDevice
) -> None:
    """The remover closes the old stream (its document goes with it) and only then uploads
    the data under the new key: an instance syncing in between finds nothing on either
    path. It must keep its data and push it, not take the gap for an emptied document."""
    laptop, phone, _ = await three(wallets, device)
    await phone.sync()
    before = phone.record().local
    assert before["accountNames"] == {ETH: "Main"}
    record = laptop.record()
    assert record.trustchain is not None and record.credentials is not None
    # The rotation alone, without the upload that follows it (the remover is slow or died).
    async with TrustchainSDK(record.server, name=record.member_name) as sdk:
        listed = await sdk.get_members(record.trustchain, record.credentials)
        tablet = next(member for member in listed if member.name == "tablet")
        await sdk.remove_member(device, record.trustchain, record.credentials, tablet)

    report = await phone.sync()
    assert report.rotated and report.pushed, report
    assert phone.record().local == before
    await laptop.sync()  # the laptop restores the rotated trustchain and receives it all
    assert laptop.record().local == before


async def test_deletion_by_another_instance_purges(
    wallets: WalletFactory, device: SoftwareDevice, store: InstanceStore
) -> None:
    laptop, phone, _ = await three(wallets, device)
    await phone.sync()
    await laptop.deactivate()
    assert laptop.record().purged.reason == "deactivated"  # type: ignore[union-attr]
    with pytest.raises(InstancePurged):
        await phone.sync()
    for name in ("laptop", "phone"):
        scan_for_secrets(store.path_for(name), ["Main", ETH])


def scan_for_secrets(directory: Path, plaintexts: list[str]) -> None:
    """Nothing readable is left: no key, no token, none of the synced data."""
    names = sorted(path.name for path in directory.iterdir())
    assert names == ["instance.json", "lock"]
    data = json.loads((directory / "instance.json").read_text())
    assert data["credentials"] is None and data["trustchain"] is None
    assert data["sync"] == {"base": None, "version": 0, "local": {}, "lastSync": None}
    text = (directory / "instance.json").read_text()
    for secret in plaintexts:
        assert secret not in text
    assert "privatekey" not in text and "walletSyncEncryptionKey" not in text and "eyJ" not in text


async def test_quarantined_module_is_kept_and_the_rest_syncs(
    wallets: WalletFactory, device: SoftwareDevice
) -> None:
    laptop, phone, _ = await three(wallets, device)
    await phone.sync()
    # Another client writes a broken recentAddresses module and an unknown module.
    record = laptop.record()
    broken = {"ethereum": [{"address": {"nested": True}, "index": "0"}]}
    document = {**record.local, "recentAddresses": broken, "futureModule": {"x": [1]}}
    await push_raw(laptop, document, record.version + 1)

    report = await phone.sync()
    assert report.quarantined.keys() == {"recentAddresses"}
    local = phone.record().local
    assert local["recentAddresses"] == broken and local["futureModule"] == {"x": [1]}
    with pytest.raises(ModuleQuarantined, match="recentAddresses"):
        from ledgersync.wallet import add_recent_address

        await phone.edit(lambda doc: add_recent_address(doc, "ethereum", "0x1", 1))
    await phone.edit(lambda doc: rename_account(doc, ETH, "still editable"))
    await phone.sync()
    await laptop.sync()
    local = laptop.record().local
    assert local["accountNames"] == {ETH: "still editable"}
    assert local["recentAddresses"] == broken and local["futureModule"] == {"x": [1]}


async def push_raw(wallet: Wallet, document: dict[str, Any], version: int) -> None:
    """What another client would write (no validation)."""
    record = wallet.record()
    assert record.trustchain is not None and record.credentials is not None
    sdk, cloud = wallet._sdks(record)
    jwt = await sdk.get_jwt(record.trustchain, record.credentials)
    payload = userdata.encode_cloud_payload(record.trustchain.wallet_sync_encryption_key, document)
    answer = await cloud.api.upload(
        jwt, record.trustchain.root_id, record.trustchain.application_path, version, payload
    )
    assert answer.status.value == "updated"
    assert base64.b64decode(payload)  # ciphertext, not the JSON


class CountingTransport(httpx2.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        return await super().handle_async_request(request)


async def test_a_round_with_nothing_to_do_makes_one_get(
    store: InstanceStore, wallets: WalletFactory, device: SoftwareDevice
) -> None:
    laptop = wallets("laptop")
    await laptop.activate(device)
    await laptop.sync()
    counting = CountingTransport()
    async with Wallet(store, "laptop", http=HTTPOptions(transport=counting)) as quiet:
        await quiet.sync()  # logs in
        counting.requests.clear()
        report = await quiet.sync()
        assert not report.changed and not report.pushed
        assert counting.requests == ["GET /atomic/v1/live"]


async def test_watch_applies_a_change_within_a_second(
    store: InstanceStore, wallets: WalletFactory, device: SoftwareDevice
) -> None:
    laptop, phone, _ = await three(wallets, device)
    stop = asyncio.Event()
    arrived = asyncio.Event()
    errors: list[WalletError] = []

    def on_report(report: SyncReport) -> None:
        if any(c.module == "ledgersync.labels" for c in report.received):
            arrived.set()

    listening = asyncio.Event()
    watcher = asyncio.create_task(
        phone.watch(
            stop,
            on_report=on_report,
            on_error=errors.append,
            poll_interval=60,
            on_listening=listening.set,
        )
    )
    try:
        await asyncio.wait_for(listening.wait(), timeout=10)
        started = time.monotonic()
        now = int(time.time() * 1000)
        await laptop.edit(lambda doc: set_label(doc, "tx", "ab" * 32, "salary", now_ms=now))
        await laptop.sync()
        await asyncio.wait_for(arrived.wait(), timeout=5)
        assert time.monotonic() - started < 1.0
        assert [r["label"] for r in label_records(store.load("phone").local)] == ["salary"]
    finally:
        stop.set()
        await asyncio.wait_for(watcher, timeout=10)
    assert errors == []


async def test_watch_picks_up_another_process_local_edit(
    store: InstanceStore, wallets: WalletFactory, device: SoftwareDevice, server: Any
) -> None:
    laptop, phone, _ = await three(wallets, device)
    stop = asyncio.Event()
    reports: asyncio.Queue[SyncReport] = asyncio.Queue()
    watcher = asyncio.create_task(
        laptop.watch(stop, on_report=reports.put_nowait, on_error=print, poll_interval=60)
    )
    try:
        await asyncio.wait_for(reports.get(), timeout=10)  # the first round
        started = time.monotonic()
        # Another process (here another Wallet on the same instance) edits without syncing.
        async with Wallet(store, "laptop") as other_process:
            await other_process.edit(lambda doc: rename_account(doc, ETH, "renamed offline"))
        report = await asyncio.wait_for(reports.get(), timeout=5)
        assert report.pushed and time.monotonic() - started < 1.0
        await phone.sync()
        assert phone.record().local["accountNames"][ETH] == "renamed offline"
    finally:
        stop.set()
        await asyncio.wait_for(watcher, timeout=10)


async def test_server_down_is_one_clear_error(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    store.create("laptop", "http://127.0.0.1:9")  # nothing listens on the discard port
    async with Wallet(store, "laptop") as wallet:
        from ledgersync.device.approval import approve_all
        from ledgersync.device.identity import generate_mnemonic

        device = SoftwareDevice.from_mnemonic(generate_mnemonic(), approver=approve_all)
        with pytest.raises(
            ServerUnreachable, match=r"cannot reach the server at http://127.0.0.1:9"
        ):
            await wallet.activate(device)
    assert not store.load("laptop").active and store.load("laptop").credentials is None


async def test_joining_merges_and_keeps_other_accounts(
    wallets: WalletFactory, device: SoftwareDevice
) -> None:
    laptop, phone = wallets("laptop"), wallets("phone")
    await laptop.edit(lambda doc: add_account(doc, account_descriptor(ETH), "Laptop's"))
    await laptop.activate(device)
    await phone.edit(lambda doc: add_account(doc, account_descriptor(OTHER), "Phone's"))
    await phone.edit(
        lambda doc: rename_account(
            add_account(doc, account_descriptor(ETH), None), ETH, "Phone's name"
        )
    )
    report = await phone.activate(device)
    # Same account named on both before joining: a conflict, the remote (first) wins, reported.
    assert [(c.entry, c.local, c.remote, c.winner) for c in report.sync.conflicts] == [
        (ETH, "Phone's name", "Laptop's", "remote")
    ]
    await laptop.sync()
    for wallet in (laptop, phone):
        local = wallet.record().local
        assert [a["id"] for a in local["accounts"]] == [ETH, OTHER]
        assert local["accountNames"] == {ETH: "Laptop's", OTHER: "Phone's"}


async def test_rotation_and_removal_before_any_data_exists(
    store: InstanceStore, wallets: WalletFactory, device: SoftwareDevice
) -> None:
    laptop, phone, tablet = (wallets(name) for name in ("laptop", "phone", "tablet"))
    for member in (laptop, phone, tablet):
        await member.activate(device)
    assert phone.record().version == 0  # nothing was ever stored
    await laptop.remove_member(device, "tablet")
    # The next command on each (a new process: a new Wallet) follows, or purges.
    async with Wallet(store, "phone") as next_phone_command:
        report = await next_phone_command.sync()
    assert report.rotated
    assert store.load("phone").trustchain == laptop.record().trustchain
    async with Wallet(store, "tablet") as next_tablet_command:
        with pytest.raises(InstancePurged):
            await next_tablet_command.sync()


async def test_deactivating_an_instance_already_removed_still_purges_it(
    store: InstanceStore, wallets: WalletFactory, device: SoftwareDevice
) -> None:
    laptop, _, _ = await three(wallets, device)
    await laptop.remove_member(device, "tablet")
    async with Wallet(store, "tablet") as next_command:
        await next_command.deactivate()
    assert store.load("tablet").purged.reason == "deactivated"  # type: ignore[union-attr]
    scan_for_secrets(store.path_for("tablet"), ["Main", ETH])
    assert laptop.record().active


async def test_a_watcher_with_no_data_sees_the_trustchain_deleted_at_once(
    wallets: WalletFactory, device: SoftwareDevice
) -> None:
    """An instance that never synced data (version 0) learns of the deletion from the server's
    notification, not at its next poll (10 minutes away here) or when its token expires."""
    laptop, phone = wallets("laptop"), wallets("phone")
    for member in (laptop, phone):
        await member.activate(device)
    assert phone.record().version == 0
    stop, listening = asyncio.Event(), asyncio.Event()
    errors: list[WalletError] = []
    watcher = asyncio.create_task(
        phone.watch(
            stop,
            on_report=lambda _report: None,
            on_error=errors.append,
            poll_interval=600,
            on_listening=listening.set,
        )
    )
    try:
        await asyncio.wait_for(listening.wait(), timeout=10)
        await laptop.deactivate()
        with pytest.raises(InstancePurged):
            await asyncio.wait_for(asyncio.shield(watcher), timeout=10)
    finally:
        stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
    # Ejected like a removed member: its stream is closed, its trustchain gone.
    assert phone.record().purged is not None and phone.record().trustchain is None
    assert errors == []


async def test_a_watcher_listens_again_after_a_reconnection_without_a_spurious_round(
    store: InstanceStore, device: SoftwareDevice
) -> None:
    """The server's answer to each new subscription (``0``: no document yet) tells the watcher
    it is listening again; it is not taken for a deletion, so it costs no round (and no
    trustchain check). The next round is the one a real change asks for."""
    with LocalServer() as own:
        for name in ("laptop", "phone"):
            store.create(name, own.url)
        laptop, phone = Wallet(store, "laptop"), Wallet(store, "phone")
        try:
            for member in (laptop, phone):
                await member.activate(device)
            assert phone.record().version == 0
            stop, reports = asyncio.Event(), asyncio.Queue[SyncReport]()
            subscriptions, errors = asyncio.Queue[None](), list[WalletError]()
            watcher = asyncio.create_task(
                phone.watch(
                    stop,
                    on_report=reports.put_nowait,
                    on_error=errors.append,
                    poll_interval=600,
                    on_listening=lambda: subscriptions.put_nowait(None),
                )
            )
            try:
                await asyncio.wait_for(subscriptions.get(), timeout=10)
                assert (await reports.get()).version == 0  # the first round
                own.restart()  # the socket closes; the SDK reconnects with a fresh token
                await asyncio.wait_for(subscriptions.get(), timeout=30)
                await laptop.edit(lambda doc: add_account(doc, account_descriptor(ETH), "Main"))
                assert (await laptop.sync()).pushed
                report = await asyncio.wait_for(reports.get(), timeout=10)
                assert report.version == 1 and ETH in {change.entry for change in report.received}
            finally:
                stop.set()
                await asyncio.gather(watcher, return_exceptions=True)
            assert errors == [] and reports.empty()
        finally:
            await laptop.aclose()
            await phone.aclose()
