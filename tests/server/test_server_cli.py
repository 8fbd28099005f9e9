"""``ledgersync serve`` as a user runs it: a real process, configured by flags and variables."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner

from ledgersync.cli.main import main
from ledgersync.server import ServerConfig
from ledgersync.server.run import text_logs
from ledgersync.testing import ledgersync_command


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


def test_a_port_in_use_is_one_sentence_naming_the_flag(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            ledgersync_command("serve", "--port", str(port)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port or LEDGERSYNC_PORT" in result.stderr
    assert "ledgersync started" not in result.stderr
    assert "startup complete" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing created before the port was checked


def test_help_says_how_many_slashes_a_sqlite_path_takes() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert "sqlite:///relative/path.sqlite" in result.output
    assert "sqlite:////absolute/path.sqlite" in result.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite:///", "'sqlite:///' names no file after sqlite:///"),
        ("sqlite://data/x.sqlite", "an SQLite URL has three slashes before a relative path"),
        ("postgresql://u:hunter2@localhost:notaport/db", "the port in 'localhost:notaport'"),
    ],
)
def test_a_malformed_database_url_names_the_part_at_fault(url: str, says: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--database", url])
    assert result.exit_code == 2
    assert says in result.output
    if url.startswith("sqlite"):
        assert "sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite" in result.output
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_only_the_default_data_folder_is_created(tmp_path: Path) -> None:
    result = subprocess.run(
        ledgersync_command("serve", "--port", "0", "--database", "sqlite:///nonexist/dir/x.sqlite"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert f"the database's folder {tmp_path / 'nonexist' / 'dir'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nonexist").exists()

    key_file = tmp_path / "absent" / "key.json"
    result = CliRunner().invoke(
        main,
        ["serve", "--port", "0", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}"],
        env={"LEDGERSYNC_KEY_FILE": str(key_file)},
    )
    assert result.exit_code == 1
    assert f"the key file's folder {key_file.parent} does not exist" in result.output
    assert "LEDGERSYNC_KEY_FILE" in result.output
    assert not key_file.parent.exists()


def test_an_unopenable_sqlite_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["serve", "--port", "0", "--database", "sqlite:////proc/x.sqlite"],
        env={"LEDGERSYNC_KEY_FILE": str(tmp_path / "key.json")},
    )
    assert result.exit_code == 1
    assert "cannot open the SQLite database /proc/x.sqlite" in result.output
    assert "sqlite:////absolute/path.sqlite" in result.output
    assert "Traceback" not in result.output


def test_on_a_terminal_serve_prints_a_banner(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    env = {
        **os.environ,
        "LEDGERSYNC_PUBLIC_URL": "https://sync.example.org",
        "LEDGERSYNC_ATTESTATION_KEYS": "prod",
    }
    env.pop("LEDGERSYNC_LOG_FORMAT", None)
    process = subprocess.Popen(
        ledgersync_command("serve", "--port", "0"),
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    try:
        while b"CLOUD_SYNC_API_PROD" not in output or not output.endswith(b"\n"):
            ready, _, _ = select.select([controller], [], [], 60)
            assert ready, output.decode(errors="replace")
            output += os.read(controller, 65536)
        text = output.decode().replace("\r\n", "\n")
        assert not text.lstrip().startswith("{")  # not JSON
        url = re.search(r"listening on\s+(http://\S+)", text)
        assert url is not None, text
        with httpx2.Client(base_url=url.group(1)) as client:
            assert client.get("/_health").json() == {"status": "ok", "database": "ok"}
        assert f"SQLite {tmp_path / 'data' / 'ledgersync.sqlite'}" in text
        assert str(tmp_path / "data" / "server-key.json") in text
        assert "Ledger PROD" in text and "Ledger TEST" not in text
        assert "TRUSTCHAIN_API_PROD=https://sync.example.org" in text
        assert "CLOUD_SYNC_API_PROD=https://sync.example.org" in text
        assert "same base URL" in text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        os.close(controller)


def test_the_log_format_is_json_or_text_by_choice() -> None:
    result = CliRunner().invoke(main, ["serve", "--log-format", "yaml"])
    assert result.exit_code == 2
    assert not text_logs(ServerConfig.from_env({"LEDGERSYNC_LOG_FORMAT": "json"}))
    assert text_logs(ServerConfig.from_env({"LEDGERSYNC_LOG_FORMAT": "text"}))
