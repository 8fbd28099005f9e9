"""The instance store: layout, modes, selection, corruption, locking, crash safety."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ledgersync.sdk import MemberCredentials
from ledgersync.wallet import (
    InstanceBusy,
    InstanceCorrupted,
    InstanceError,
    InstanceExists,
    InstanceNotFound,
    InstanceStore,
    NoInstanceSelected,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_and_modes(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path / "home")
    record = store.create("laptop", "http://localhost:8080/", member_name="My laptop")
    assert (record.server, record.member_name) == ("http://localhost:8080", "My laptop")
    directory = tmp_path / "home" / "instances" / "laptop"
    assert mode(directory) == 0o700 and mode(directory.parent) == 0o700
    assert mode(directory / "instance.json") == 0o600 and mode(directory / "lock") == 0o600
    assert sorted(p.name for p in directory.iterdir()) == ["instance.json", "lock"]
    assert store.load("laptop") == record
    with pytest.raises(InstanceExists):
        store.create("laptop", "http://localhost:8080")


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://x", "http://", "http://h:99999", "x"])
def test_bad_server_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(InstanceError):
        InstanceStore(tmp_path).create("a", url)
    assert InstanceStore(tmp_path).names() == []


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 65])
def test_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(InstanceError, match="invalid instance name"):
        InstanceStore(tmp_path).create(name, "http://localhost")


def test_selection(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    with pytest.raises(NoInstanceSelected, match="no instance yet"):
        store.select(None)
    store.create("laptop", "http://localhost")
    assert store.select(None) == "laptop"
    store.create("phone", "http://localhost")
    with pytest.raises(NoInstanceSelected, match=r"several instances exist \(laptop, phone\)"):
        store.select(None)
    assert store.select("phone") == "phone"
    with pytest.raises(InstanceNotFound, match="instances: laptop, phone"):
        store.select("tablet")


def test_a_damaged_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    store.create("laptop", "http://localhost")
    path = tmp_path / "instances" / "laptop" / "instance.json"
    for damage in (b"{not json", b"[]", json.dumps({"format": 1, "name": 3}).encode()):
        path.write_bytes(damage)
        with pytest.raises(InstanceCorrupted, match="left untouched"):
            store.load("laptop")
        assert path.read_bytes() == damage


def test_secrets_round_trip(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    record = store.create("laptop", "http://localhost")
    credentials = MemberCredentials.generate()
    with store.locked("laptop") as instance:
        instance.save(replace(record, credentials=credentials, local={"accountNames": {"a": "b"}}))
    loaded = store.load("laptop")
    assert loaded.credentials == credentials and loaded.local == {"accountNames": {"a": "b"}}


HOLD_LOCK = """
import sys, time
from pathlib import Path
from ledgersync.wallet import InstanceStore
with InstanceStore(Path(sys.argv[1])).locked("laptop"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_second_writer_waits_then_fails_clearly(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    store.create("laptop", "http://localhost")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        busy = pytest.raises(InstanceBusy, match=rf"process {holder.pid}\).*waited 0.3 s")
        with busy, store.locked("laptop", timeout=0.3):
            pass
        assert time.monotonic() - started >= 0.3
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        with store.locked("laptop", timeout=10):  # released: we get it
            pass
    finally:
        holder.kill()
        holder.wait()


WRITE_FOREVER = """
import sys
from dataclasses import replace
from pathlib import Path
from ledgersync.wallet import InstanceStore
store = InstanceStore(Path(sys.argv[1]))
n = 0
while True:
    with store.locked("laptop") as instance:
        record = instance.read()
        big = {"accountNames": {f"id{i}": f"name {n}" for i in range(2000)}}
        instance.save(replace(record, version=n, local=big, base=big))
    n += 1
    print(n, flush=True)
"""


def test_a_crash_mid_write_leaves_a_whole_file(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    store.create("laptop", "http://localhost")
    for attempt in range(5):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITE_FOREVER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        for _ in range(2 + attempt):  # a few whole writes, then a kill wherever it lands
            writer.stdout.readline()
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        record = store.load("laptop")  # whole, never half a file
        assert record.local == record.base and len(record.local["accountNames"]) == 2000
        names = set(record.local["accountNames"].values())
        assert len(names) == 1
