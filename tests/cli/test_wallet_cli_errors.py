"""Bad input to every wallet command: one ``Error:`` line, the documented exit code, no trace.

Exit codes: 1 refused or failed, 2 usage error, 3 server unreachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgersync.testing import LocalServer

from ..support.wallets import ETH
from .wallet_cli import CLI, one_error_line

NO_SERVER = "http://127.0.0.1:9"
HOST_KEY = "02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[CLI]:
    runner = CLI(tmp_path / "home")
    yield runner
    runner.close()


def test_without_a_usable_instance(cli: CLI, tmp_path: Path) -> None:
    empty = cli.many([("accounts", "list"), ("sync",), ("status", "--json"), ("labels", "list")])
    for result in empty:
        one_error_line(result, 1, "no instance yet", "ledgersync instance new")
    cli.device("alice")
    cli.ok("instance", "new", "a", "--server", NO_SERVER)
    cli.ok("instance", "new", "b", "--server", NO_SERVER)
    (tmp_path / "garbage.jsonl").write_text("this is not json\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "norecord.jsonl").write_text('{"type": "tx", "label": "no ref"}\n')
    a = ("--instance", "a")
    cases: list[tuple[tuple[str, ...], int, tuple[str, ...]]] = [
        (("accounts", "list"), 1, ("several instances exist (a, b)", "--instance")),
        (("accounts", "list", "--instance", "nope"), 1, ("no instance named 'nope'",)),
        (("instance", "new", "a", "--server", NO_SERVER), 1, ("already exists",)),
        (("instance", "new", "bad name", "--server", NO_SERVER), 2, ("invalid instance name",)),
        (("instance", "new", "c", "--server", "ftp://x"), 2, ("is not a server URL",)),
        (("instance", "new", "c"), 2, ("--server",)),
        (("instance", "remove", "nope"), 1, ("no instance named 'nope'",)),
        (("instance", "frobnicate"), 2, ("No such command",)),
        (("accounts", "add", "not-an-id", *a), 1, ("--currency and --address",)),
        (("accounts", "add", ETH, "--currency", "bitcoin", *a), 1, ("names currency",)),
        (("accounts", "add", ETH, "--index", "-1", *a), 2, ("--index",)),
        (("accounts", "rename", "missing", "x", *a), 1, ("no account 'missing'",)),
        (("accounts", "remove", "missing", *a), 1, ("no account 'missing'",)),
        (("accounts", "rename", ETH, *a), 2, ("Missing argument 'NAME'",)),
        (("labels", "set", "bogus", "ref", "x", *a), 2, ("'bogus' is not one of",)),
        (("labels", "set", "tx", "", "x", *a), 1, ("needs a reference",)),
        (("labels", "set", "tx", "r", "x", "--spendable", "maybe", *a), 2, ("--spendable",)),
        (("labels", "set", "tx", "r", "x", "--spendable", "true", *a), 1, ("output labels",)),
        (("labels", "remove", "tx", "nothing", *a), 1, ("no tx label",)),
        (("labels", "import", str(tmp_path / "garbage.jsonl"), *a), 1, ("line 1", "nothing")),
        (("labels", "import", str(tmp_path / "binary"), *a), 1, ("not UTF-8",)),
        (("labels", "import", str(tmp_path / "norecord.jsonl"), *a), 1, ("'ref'",)),
        (("labels", "import", str(tmp_path / "missing"), *a), 1, ("cannot read",)),
        (("labels", "import", str(tmp_path), *a), 1, ("cannot read",)),
        (("labels", "export", "-o", str(tmp_path / "no" / "dir"), *a), 1, ("cannot write",)),
        (("export", "--format", "pdf", *a), 2, ("'pdf' is not one of",)),
        (("pair", "join", "not a url", *a), 2, ("not a Ledger Sync pairing URL",)),
        (
            ("pair", "join", f"ws://elsewhere:1/v1/qr?host={HOST_KEY}", "--digits", "1", *a),
            1,
            ("another server",),
        ),
        (("pair", "host", "--timeout", "0", *a), 2, ("--timeout",)),
        (("activate", "--device", "bogus:x", "--yes", *a), 2, ("--device",)),
        (("activate", "--device", "software:nobody", "--yes", *a), 1, ("nobody",)),
        (("activate", "--device", "software:alice", "--yes", *a), 3, ("cannot reach",)),
        (("members", *a), 1, ("not active yet", "ledgersync activate")),
        (("members", "remove", "x", *a), 2, ("--device",)),
        (("members", "remove", "x", "--device", "software:alice", "--yes", *a), 1, ("not active",)),
        (("sync", *a), 1, ("not active yet",)),
        (("sync", "--watch", *a), 1, ("not active yet",)),
        (("sync", "--watch", "--interval", "0", *a), 2, ("--interval",)),
        (("deactivate", "--yes", *a), 1, ("not active yet",)),
        (("status", "--bogus", *a), 2, ("No such option",)),
    ]
    results = cli.many([args for args, _, _ in cases])
    for (_, code, fragments), result in zip(cases, results, strict=True):
        one_error_line(result, code, *fragments)

    # A damaged instance file: that instance fails clearly, the listing still works.
    (cli.home / "instances" / "b" / "instance.json").write_text("{not json")
    one_error_line(cli("accounts", "list", "--instance", "b"), 1, "is not JSON")
    listing = cli.ok("instance", "list", "--json").json()
    assert [entry["error"] is not None for entry in listing] == [False, True]
    assert "damaged" in cli.ok("instance", "list").out


def test_server_down(cli: CLI) -> None:
    """An active instance whose server stopped: exit 3, and edits are kept for later."""
    cli.device("alice")
    with LocalServer() as server:
        cli.activate_pair(server.url)
        url = server.url
    laptop = ("--instance", "laptop")
    cases: list[tuple[tuple[str, ...], int]] = [
        (("sync", *laptop), 3),
        (("members", *laptop), 3),
        (("pair", "host", *laptop), 3),
        (("pair", "join", f"{url.replace('http', 'ws')}/v1/qr?host={HOST_KEY}", *laptop), 3),
        (("deactivate", "--yes", *laptop), 3),
        (("members", "remove", "phone", "--device", "software:alice", "--yes", *laptop), 3),
    ]
    for (_, code), result in zip(cases, cli.many([args for args, _ in cases]), strict=True):
        one_error_line(result, code, "cannot reach the server", url)

    edited = cli.ok("labels", "set", "addr", "bc1qoffline", "later", *laptop)
    assert edited.err.startswith("Not synced: cannot reach the server")
    assert "kept here for the next sync" in edited.err
    status = cli("status", "--json", *laptop)
    assert status.code == 3 and status.json()["serverState"] == "unreachable"
    assert status.json()["pendingChanges"] == 1
    assert cli.ok("status", "--offline", *laptop).out.startswith("instance:")
    assert cli.record("laptop")["credentials"] is not None  # nothing was purged

    # Removing the instance here is refused while it is active, unless forced.
    one_error_line(cli("instance", "remove", "phone"), 1, "is active", "--force")
    removed = cli.ok("instance", "remove", "phone", "--force")
    assert "still a member" in removed.err
    assert [i["name"] for i in cli.ok("instance", "list", "--json").json()] == ["laptop"]
