"""Labels and exports on the command line: BIP-329 round trip, CSV, edits before activation."""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgersync.wallet import CSV_COLUMNS

from ..support.wallets import ETH
from .wallet_cli import CLI, TXID

#: Nothing listens there: these instances are never activated.
NO_SERVER = "http://127.0.0.1:9"

RECORDS = [
    {"type": "tx", "ref": TXID, "label": "Rent, December", "origin": "wpkh([d34db33f/84'/0'/0'])"},
    {"type": "tx", "ref": "a" * 64, "label": "Confirmed", "height": 800000, "time": 1700000000},
    {"type": "addr", "ref": "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh", "label": "Donations ☕"},
    {"type": "output", "ref": f"{TXID}:0", "label": "Cold", "spendable": False, "value": 1500},
    {
        "type": "xpub",
        "ref": "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8Yt"
        "GqsefD265TMg7usUDFdp6W1EGMcet8",
        "label": "Main",
    },
    {"type": "pubkey", "ref": "0283409659355b6d1cc3c32decd5d561abaac86c37a353b52895a5e6c196d6f448"},
    {"type": "input", "ref": f"{TXID}:1", "label": 'He said "hi"\nthen left', "fee": 141},
]


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[CLI]:
    runner = CLI(tmp_path / "home")
    runner.ok("instance", "new", "solo", "--server", NO_SERVER)
    yield runner
    runner.close()


def test_bip329_import_then_export_round_trips(cli: CLI, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [json.dumps(record, ensure_ascii=False) for record in RECORDS]
    lines.insert(2, json.dumps({"type": "future-type", "ref": "x", "label": "skipped"}))
    source.write_text("\ufeff" + "\n".join(lines) + "\n\n", encoding="utf-8")
    imported = cli.ok("labels", "import", str(source))
    assert imported.out.startswith(f"Imported {len(RECORDS)} labels.")
    assert "not active yet" in imported.err  # kept for the first sync

    exported = cli.ok("labels", "export").out
    assert [json.loads(line) for line in exported.splitlines()] == RECORDS
    again = cli.ok("export", "--format", "bip329").out
    assert again == exported
    assert list(json.loads(exported.splitlines()[0])) == ["type", "ref", "label", "origin"]

    # Into a file (atomic, 0600), then into another instance through standard input.
    target = tmp_path / "out.jsonl"
    cli.ok("labels", "export", "-o", str(target))
    assert target.read_text(encoding="utf-8") == exported
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    cli.ok("instance", "new", "other", "--server", NO_SERVER)
    cli.ok("labels", "import", "-", "--no-sync", "--instance", "other", input=exported)
    listed = cli.ok("labels", "list", "--json", "--instance", "other").json()
    assert listed == RECORDS

    # Importing the same file again changes nothing; --confirmed-only keeps tx with a height.
    solo = ("--instance", "solo")
    assert "Nothing changed" in cli.ok("labels", "import", str(target), "--no-sync", *solo).out
    confirmed = cli.ok("export", "--format", "bip329", "--confirmed-only", *solo).out
    kept = [json.loads(line)["ref"] for line in confirmed.splitlines()]
    assert TXID not in kept and "a" * 64 in kept and len(kept) == len(RECORDS) - 1


def test_csv_export_header_and_quoting(cli: CLI, tmp_path: Path) -> None:
    cli.ok("accounts", "add", ETH, "--name", 'Main, "hot" wallet', "--no-sync")
    cli.ok("labels", "set", "tx", TXID, 'Rent, "December"\nand more', "--no-sync")
    cli.ok("labels", "set", "output", f"{TXID}:0", "Cold", "--spendable", "false", "--no-sync")
    text = cli.ok("export", "--format", "csv").out
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")
    assert '"Main, ""hot"" wallet"' in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["kind"] for row in rows] == ["account", "tx", "output"]
    assert rows[0]["label"] == 'Main, "hot" wallet' and rows[0]["currency"] == "ethereum"
    assert rows[0]["address"] == "0x71C7656EC7ab88b098defB751B7401B5f6d8976F"
    assert rows[1]["label"] == 'Rent, "December"\nand more' and rows[1]["reference"] == TXID
    out = tmp_path / "wallet.csv"
    cli.ok("export", "--format", "csv", "-o", str(out))
    assert out.read_bytes() == text.encode()
    confirmed = cli.ok("export", "--format", "csv", "--confirmed-only").out
    assert [row["kind"] for row in csv.DictReader(io.StringIO(confirmed, newline=""))] == [
        "account",
        "output",
    ]

    # The table escapes what would break a line; --json keeps the text as it is.
    table = cli.ok("labels", "list").out.splitlines()
    assert table[0] == "type\treference\tlabel\torigin\tspendable"
    assert len(table) == 3 and "\\n" in table[1]
    assert table[2].split("\t") == ["output", f"{TXID}:0", "Cold", "", "false"]
    listed = cli.ok("labels", "list", "--json").json()
    assert listed[0]["label"] == 'Rent, "December"\nand more'


def test_edits_offline_are_kept_and_reported(cli: CLI) -> None:
    added = cli.ok("accounts", "add", ETH, "--name", "Main")
    assert "Not synced" in added.err and "not active yet" in added.err
    renamed = cli.ok("accounts", "rename", ETH, "Main")
    assert renamed.out.startswith("Nothing changed")
    cli.ok("accounts", "rename", ETH, "Savings", "--no-sync")
    assert cli.ok("accounts", "list", "--json").json()[0]["name"] == "Savings"
    cli.ok("labels", "set", "addr", "bc1qabc", "one", "--no-sync")
    cli.ok("labels", "remove", "addr", "bc1qabc", "--no-sync")
    cli.ok("accounts", "remove", ETH, "--no-sync")
    assert cli.ok("export", "--format", "json").json()["accounts"] == []
