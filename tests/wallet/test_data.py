"""Local data: modules and quarantine, edits, account ids, BIP-329 files, exports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from ledgersync.wallet import (
    CSV_COLUMNS,
    LABELS_KEY,
    InvalidEdit,
    LabelsFileError,
    ModuleQuarantined,
    account_descriptor,
    add_account,
    add_recent_address,
    import_labels,
    label_records,
    quarantined,
    read_bip329,
    remove_account,
    remove_label,
    rename_account,
    set_label,
    to_bip329,
    to_csv,
    to_json,
)

from ..support.wallets import ETH

BIP329 = (Path(__file__).parent / "data" / "sample.jsonl").read_text(encoding="utf-8")


def test_account_descriptor_from_ledger_id() -> None:
    assert account_descriptor(ETH) == {
        "id": ETH,
        "currencyId": "ethereum",
        "freshAddress": "0x71C7656EC7ab88b098defB751B7401B5f6d8976F",
        "seedIdentifier": "0x71C7656EC7ab88b098defB751B7401B5f6d8976F",
        "derivationMode": "",
        "index": 0,
    }
    btc = account_descriptor("js:2:bitcoin:xpub6C:native_segwit", fresh_address="bc1q", index=3)
    assert (btc["derivationMode"], btc["freshAddress"], btc["index"]) == (
        "native_segwit",
        "bc1q",
        3,
    )
    with pytest.raises(InvalidEdit, match="names currency 'ethereum'"):
        account_descriptor(ETH, currency_id="bitcoin")
    with pytest.raises(InvalidEdit, match="--currency and --address must be given"):
        account_descriptor("my-account")
    custom = account_descriptor("my-account", currency_id="ethereum", fresh_address="0x1")
    assert custom["seedIdentifier"] == ""


def test_edits() -> None:
    doc = add_account({}, account_descriptor(ETH), "Main")
    assert doc == {"accounts": [account_descriptor(ETH)], "accountNames": {ETH: "Main"}}
    with pytest.raises(InvalidEdit, match="already exists"):
        add_account(doc, account_descriptor(ETH), None)
    with pytest.raises(InvalidEdit, match="no account"):
        rename_account(doc, "js:2:ethereum:0xnope:", "x")
    with pytest.raises(InvalidEdit, match="must not be empty"):
        rename_account(doc, ETH, "  ")
    assert remove_account(doc, ETH) == {"accounts": [], "accountNames": {ETH: "Main"}}
    doc = set_label(doc, "addr", "bc1q", "rent", now_ms=5)
    doc = set_label(doc, "output", "t:1", "coin", now_ms=6, spendable=False, origin="wpkh(x)")
    assert label_records(doc) == [
        {"type": "addr", "ref": "bc1q", "label": "rent"},
        {"type": "output", "ref": "t:1", "label": "coin", "origin": "wpkh(x)", "spendable": False},
    ]
    with pytest.raises(InvalidEdit, match="output labels only"):
        set_label(doc, "tx", "t", "x", now_ms=1, spendable=True)
    with pytest.raises(InvalidEdit, match="unknown label type"):
        set_label(doc, "walletname", "t", "x", now_ms=1)
    assert [r["ref"] for r in label_records(remove_label(doc, "addr", "bc1q"))] == ["t:1"]
    recent = add_recent_address(add_recent_address({}, "ethereum", "0x1", 1), "ethereum", "0x2", 2)
    recent = add_recent_address(recent, "ethereum", "0x1", 3)
    assert recent["recentAddresses"] == {
        "ethereum": [
            {"address": "0x1", "index": 0, "lastUsed": 3},
            {"address": "0x2", "index": 1, "lastUsed": 2},
        ]
    }


def test_an_unchanged_label_keeps_its_time() -> None:
    doc = set_label({}, "addr", "a", "x", now_ms=5)
    again = import_labels(doc, [{"type": "addr", "ref": "a", "label": "x"}], now_ms=99)
    assert again[LABELS_KEY][0]["updatedAt"] == 5


def test_quarantine_refuses_local_edits_and_keeps_the_rest_usable() -> None:
    broken = {
        "accounts": [{"id": 1}],
        "accountNames": {ETH: "fine"},
        "recentAddresses": {"ethereum": [{"address": {"address": "0x1"}, "index": 0}]},
        LABELS_KEY: "not a list",
    }
    assert set(quarantined(broken)) == {"accounts", "recentAddresses", LABELS_KEY}
    with pytest.raises(ModuleQuarantined, match=r"'accounts'.*not valid"):
        add_account(broken, account_descriptor(ETH), None)
    with pytest.raises(ModuleQuarantined):
        set_label(broken, "tx", "t", "x", now_ms=1)
    with pytest.raises(ModuleQuarantined):
        add_recent_address(broken, "ethereum", "0x2", 1)
    exported = to_json(broken)
    assert exported["accounts"] == [] and set(exported["quarantined"]) == set(quarantined(broken))


def test_bip329_round_trip_keeps_unknown_fields_and_order() -> None:
    records = read_bip329(BIP329)
    assert [r["type"] for r in records] == ["tx", "addr", "pubkey", "input", "output", "xpub", "tx"]
    doc = import_labels({}, records, now_ms=1)
    text = to_bip329(doc)
    assert [json.loads(line) for line in text.splitlines()] == records
    assert read_bip329(text.encode()) == records
    assert '"futureField": {"kept": true}' in text


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ('{"type": "tx", "ref": "a"}\nnot json\n', 2, "not a JSON object"),
        ('{"type": "tx", "ref": "a"}\n\n[1, 2]\n', 3, "not a JSON object"),
        ('{"ref": "a"}\n', 1, "needs a 'type'"),
        ('{"type": "tx"}\n', 1, "'ref' is required"),
        ('{"type": "output", "ref": "a:0", "spendable": "yes"}\n', 1, "'spendable'"),
        ('{"type": "addr", "ref": "a", "label": 5}\n', 1, "'label'"),
        (b'{"type": "tx", "ref": "a"}\n{"type": "tx", "ref": "\xff"}\n', 2, "not UTF-8"),
    ],
)
def test_bip329_bad_lines(content: str | bytes, line: int, reason: str) -> None:
    with pytest.raises(LabelsFileError, match=reason) as info:
        read_bip329(content)
    assert info.value.line == line
    assert f"line {line}" in str(info.value) and "nothing from the file was applied" in str(
        info.value
    )


def test_csv_columns_quoting_and_confirmed_only() -> None:
    doc = add_account({}, account_descriptor(ETH), 'My "main", account')
    doc = import_labels(doc, read_bip329(BIP329), now_ms=1)
    text = to_csv(doc)
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows[0] == {
        "kind": "account",
        "reference": ETH,
        "label": 'My "main", account',
        "currency": "ethereum",
        "account": ETH,
        "address": "0x71C7656EC7ab88b098defB751B7401B5f6d8976F",
        "date": "",
        "value": "",
    }
    assert '"My ""main"", account"' in text  # RFC 4180 quoting
    tx = rows[1]
    assert (tx["kind"], tx["date"], tx["value"], tx["account"]) == (
        "tx",
        "2024-01-01T00:00:00Z",
        "-15000",
        "wpkh([d34db33f/84'/0'/0'])",
    )
    assert rows[2]["address"] == "bc1q34aq5drpuwy3wgl9lhup9892qp6svr8ldzyy7c"
    assert rows[-1]["label"] == 'Pending, "quoted"\nmultiline'
    confirmed = list(csv.DictReader(io.StringIO(to_csv(doc, confirmed_only=True), newline="")))
    assert [r["kind"] for r in confirmed] == [
        "account",
        "tx",
        "addr",
        "pubkey",
        "input",
        "output",
        "xpub",
    ]
