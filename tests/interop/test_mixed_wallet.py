"""A Python wallet (``ledgersync.wallet``) and a Ledger Live wallet (Ledger's own walletsync
code from ``@ledgerhq/live-wallet`` 0.27.4, ``harness/walletsync.cjs``) in one trustchain, on
a real ``ledgersync serve``, with one seed as the device on both sides.

What is proven: accounts and names added on either side reach the other; the labels module
the Python wallet adds survives Ledger's pushes; every document Python writes validates
against Ledger's schema and is a fixed point of Ledger's sync (it finds nothing to push back).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ledgersync.device.approval import approve_all
from ledgersync.device.software import SoftwareDevice
from ledgersync.testing import LocalServer
from ledgersync.wallet import (
    LABELS_KEY,
    InstanceStore,
    Wallet,
    add_account,
    add_recent_address,
    label_records,
    remove_account,
    rename_account,
    set_label,
)

from .js import JsInstance

JsFor = Callable[..., JsInstance]


def account(tag: str) -> dict[str, Any]:
    address = f"0x{tag.encode().hex():0>40}"
    return {
        "id": f"js:2:ethereum:{address}:",
        "currencyId": "ethereum",
        "freshAddress": address,
        "seedIdentifier": "04" + "ab" * 32,
        "derivationMode": "",
        "index": 0,
    }


@pytest.fixture
async def py_wallet(tmp_path: Path, server: LocalServer) -> AsyncIterator[Wallet]:
    store = InstanceStore(tmp_path / "home")
    store.create("python", server.url, member_name="Python laptop")
    async with Wallet(store, "python") as wallet:
        yield wallet


async def js(instance: JsInstance, op: str, **args: Any) -> Any:
    return await asyncio.to_thread(instance.call, op, **args)


async def assert_fixed_point(ledger_live: JsInstance, python: Wallet) -> None:
    """Ledger's code pulls what Python wrote, validates it, and has nothing to push back."""
    written = python.record().base
    verdict = await js(ledger_live, "walletValidate", data=written)
    assert verdict["success"], verdict["issues"]
    round_ = await js(ledger_live, "walletSyncRound")
    assert round_["pushed"] is False, round_["nextState"]
    assert (await js(ledger_live, "walletDiff"))["hasChanges"] is False
    assert (await js(ledger_live, "walletState"))["version"] == python.record().version


async def test_accounts_names_and_labels_cross_both_ways(
    js_for: JsFor, device_key: str, phrase: str, py_wallet: Wallet
) -> None:
    ledger_live = js_for("Ledger Live", device_key, wallet=True)
    await js(ledger_live, "getOrCreateTrustchain")
    first, second, third = account("ll-1"), account("py-1"), account("ll-2")
    await js(ledger_live, "walletAddAccount", **first)
    await js(ledger_live, "walletRename", id=first["id"], name="From Ledger Live")
    await js(ledger_live, "walletSyncRound")

    # Python joins with the same seed: a merge with what Ledger Live synced.
    device = SoftwareDevice.from_mnemonic(phrase, approver=approve_all)
    await py_wallet.edit(lambda doc: add_account(doc, second, "From Python"))
    activation = await py_wallet.activate(device)
    assert activation.outcome == "joined"
    local = py_wallet.record().local
    assert [a["id"] for a in local["accounts"]] == [first["id"], second["id"]]
    assert local["accountNames"] == {first["id"]: "From Ledger Live", second["id"]: "From Python"}
    await assert_fixed_point(ledger_live, py_wallet)
    state = await js(ledger_live, "walletState")
    assert [a["id"] for a in state["accounts"]] == [first["id"], second["id"]]
    assert state["accountNames"][second["id"]] == "From Python"

    # Python labels, a rename and a recent address; Ledger Live then pushes its own change.
    now = int(time.time() * 1000)
    await py_wallet.edit(lambda doc: set_label(doc, "addr", "bc1qlabel", "rent", now_ms=now))
    await py_wallet.edit(lambda doc: rename_account(doc, first["id"], "Renamed in Python"))
    await py_wallet.edit(lambda doc: add_recent_address(doc, "ethereum", "0xfeed", now))
    await py_wallet.sync()
    await assert_fixed_point(ledger_live, py_wallet)
    state = await js(ledger_live, "walletState")
    assert state["accountNames"][first["id"]] == "Renamed in Python"
    assert [e["address"] for e in state["recentAddresses"]["ethereum"]] == ["0xfeed"]

    await js(ledger_live, "walletAddAccount", **third)
    await js(ledger_live, "walletRename", id=third["id"], name="Third")
    pushed = await js(ledger_live, "walletSyncRound")
    assert pushed["pushed"] is True
    assert LABELS_KEY in pushed["nextState"]  # Ledger's aggregator re-emits our module
    report = await py_wallet.sync()
    assert not report.pushed and not report.conflicts
    local = py_wallet.record().local
    assert [a["id"] for a in local["accounts"]] == [first["id"], second["id"], third["id"]]
    assert local["accountNames"][third["id"]] == "Third"
    assert [r["label"] for r in label_records(local)] == ["rent"]


async def test_concurrent_edits_with_ledger_live_lose_nothing(
    js_for: JsFor, device_key: str, phrase: str, py_wallet: Wallet
) -> None:
    ledger_live = js_for("Ledger Live", device_key, wallet=True)
    await js(ledger_live, "getOrCreateTrustchain")
    a, b = account("a"), account("b")
    await js(ledger_live, "walletAddAccount", **a)
    await js(ledger_live, "walletAddAccount", **b)
    await js(ledger_live, "walletSyncRound")
    await py_wallet.activate(SoftwareDevice.from_mnemonic(phrase, approver=approve_all))

    # Both rename different accounts before syncing: Ledger Live commits first.
    await js(ledger_live, "walletRename", id=a["id"], name="LL name")
    await py_wallet.edit(lambda doc: rename_account(doc, b["id"], "Python name"))
    await js(ledger_live, "walletSyncRound")
    report = await py_wallet.sync()
    assert report.pushed and not report.conflicts
    assert py_wallet.record().local["accountNames"] == {a["id"]: "LL name", b["id"]: "Python name"}
    await assert_fixed_point(ledger_live, py_wallet)
    state = await js(ledger_live, "walletState")
    assert state["accountNames"] == {a["id"]: "LL name", b["id"]: "Python name"}


async def test_python_removes_an_account_and_ledger_live_follows(
    js_for: JsFor, device_key: str, phrase: str, py_wallet: Wallet
) -> None:
    ledger_live = js_for("Ledger Live", device_key, wallet=True)
    await js(ledger_live, "getOrCreateTrustchain")
    a, b = account("keep"), account("drop")
    for item in (a, b):
        await js(ledger_live, "walletAddAccount", **item)
    await js(ledger_live, "walletRename", id=b["id"], name="Dropped")
    await js(ledger_live, "walletSyncRound")
    await py_wallet.activate(SoftwareDevice.from_mnemonic(phrase, approver=approve_all))
    await py_wallet.edit(lambda doc: remove_account(doc, b["id"]))
    await py_wallet.sync()
    await assert_fixed_point(ledger_live, py_wallet)
    state = await js(ledger_live, "walletState")
    assert [x["id"] for x in state["accounts"]] == [a["id"]]
    assert state["latest"] == py_wallet.record().base
