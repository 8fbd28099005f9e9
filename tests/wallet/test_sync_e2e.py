"""Wallet instances syncing through a real server: convergence, conflicts, lifecycle."""

from __future__ import annotations

import time

from ledgersync.device.software import SoftwareDevice
from ledgersync.wallet import (
    account_descriptor,
    add_account,
    label_records,
    rename_account,
    set_label,
)

from ..support.wallets import BTC, ETH, WalletFactory


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_two_instances_converge(wallets: WalletFactory, device: SoftwareDevice) -> None:
    laptop, phone = wallets("laptop"), wallets("phone")
    created = await laptop.activate(device)
    assert created.outcome == "created"
    await laptop.edit(lambda doc: add_account(doc, account_descriptor(ETH), "Main"))
    await laptop.sync()
    joined = await phone.activate(device)
    assert joined.outcome == "joined"
    assert phone.record().local["accountNames"] == {ETH: "Main"}

    # Concurrent edits of different entries, both offline: both survive.
    await laptop.edit(lambda doc: rename_account(doc, ETH, "Savings"))
    await phone.edit(lambda doc: add_account(doc, account_descriptor(BTC), "Cold"))
    await phone.edit(lambda doc: set_label(doc, "addr", "bc1qxyz", "rent", now_ms=now_ms()))
    await laptop.sync()
    report = await phone.sync()
    assert report.pushed and not report.conflicts
    await laptop.sync()
    for wallet in (laptop, phone):
        local = wallet.record().local
        assert local["accountNames"] == {ETH: "Savings", BTC: "Cold"}
        assert [a["id"] for a in local["accounts"]] == [ETH, BTC]
        assert [r["label"] for r in label_records(local)] == ["rent"]
    assert laptop.record().local == phone.record().local
