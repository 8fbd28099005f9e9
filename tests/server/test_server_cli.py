"""``ledgersync serve`` as a user runs it: a real process, configured by flags and variables."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx2
from click.testing import CliRunner

from ledgersync.cli.main import main


def test_serve_is_a_subcommand_with_its_flags() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--database", "--public-url"):
        assert flag in result.output


def test_bad_configuration_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["serve"], env={"LEDGERSYNC_PORT": "eighty"})
    assert result.exit_code == 2
    assert "LEDGERSYNC_PORT" in result.output


def test_an_unknown_database_scheme_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["serve", "--database", "mysql://db/sync"])
    assert result.exit_code == 2
    assert "database URL must start with sqlite:/// or postgresql://" in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_one_clear_sentence(tmp_path: Path) -> None:
    # Nothing listens on the port of a socket we hold open without listening.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        result = CliRunner().invoke(
            main,
            ["serve", "--database", f"postgresql://nobody@127.0.0.1:{port}/sync"],
            env={"LEDGERSYNC_KEY_FILE": str(tmp_path / "key.json")},
        )
    assert result.exit_code == 1
    assert "cannot start:" in result.output
    assert "Traceback" not in result.output


def test_an_unwritable_key_file_is_one_clear_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(
        main,
        ["serve", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}"],
        env={"LEDGERSYNC_KEY_FILE": str(blocker / "key.json")},  # a file used as a directory
    )
    assert result.exit_code == 1
    assert "cannot start:" in result.output
    assert "Traceback" not in result.output


def test_serve_starts_on_a_sqlite_file_with_a_private_key_file(tmp_path: Path) -> None:
    env = {**os.environ, "LEDGERSYNC_PUBLIC_URL": "https://sync.example.org"}
    command = [str(Path(sys.executable).parent / "ledgersync"), "serve", "--port", "0"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        url = None
        lines = []
        for line in process.stderr:  # JSON log lines, until uvicorn says where it listens
            lines.append(line)
            entry = json.loads(line)
            assert "127.0.0.1:" not in entry.get("client", "")
            found = re.search(r"running on (http://\S+)", entry["message"])
            if found:
                url = found.group(1)
                break
        assert url is not None, "".join(lines)
        with httpx2.Client(base_url=url) as client:
            assert client.get("/_info").json()["name"] == "ledgersync"
            challenge = client.get("/v1/challenge").json()["json"]
        assert challenge["host"] == "sync.example.org"
        assert (tmp_path / "data" / "ledgersync.sqlite").exists()
        assert (tmp_path / "data" / "server-key.json").stat().st_mode & 0o777 == 0o600
    finally:
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
        assert process.returncode == 0, rest
        assert "Traceback" not in rest
