"""``ledgersync device …`` in process, with the home directory in a temporary folder."""

import itertools
import json
import os
import stat
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ledgersync.cli.main import main
from ledgersync.device import DeviceIdentity, Emulator, approve_all
from ledgersync.protocol.crypto import KeyPair

from ..device.speculos_server import SpeculosServer
from .terminal import run_on_a_terminal


@pytest.fixture(scope="module")
def speculos_phrase(vectors):
    return vectors["derived_speculos_seed_id_key"]["mnemonic"]


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def cli(home):
    def run(*args, input=None, env=None):
        environment = {"LEDGERSYNC_HOME": str(home), "LEDGERSYNC_DEVICE": None, **(env or {})}
        return CliRunner().invoke(main, ["device", *args], input=input, env=environment)

    return run


def saved_phrase(home, name):
    return json.loads((home / "devices" / f"{name}.json").read_text())["mnemonic"]


def test_new_keeps_the_phrase_private(cli, home):
    result = cli("new", "alice")
    assert result.exit_code == 0, result.output
    phrase = saved_phrase(home, "alice")
    words = phrase.split()
    # Not even two words of it in a row (a single word may be an ordinary English one).
    for first, second in itertools.pairwise(words):
        assert f"{first} {second}" not in result.output
    path = home / "devices" / "alice.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    seed_id = DeviceIdentity.from_mnemonic(phrase).public_key.hex()
    assert seed_id in result.output


def test_the_phrase_is_printed_only_when_asked(cli, home):
    created = cli("new", "bob", "--show-mnemonic")
    assert saved_phrase(home, "bob") in created.output
    shown = cli("show", "bob")
    assert shown.exit_code == 0 and saved_phrase(home, "bob") not in shown.output
    revealed = cli("show", "bob", "--show-mnemonic")
    assert saved_phrase(home, "bob") in revealed.output


def test_import_from_stdin_and_list(cli, vectors, speculos_phrase):
    expected = vectors["derived_speculos_seed_id_key"]["seed_id_public_key"]
    result = cli("import", "spec", "--mnemonic-file", "-", input=speculos_phrase + "\n")
    assert result.exit_code == 0, result.output
    assert expected in result.output and speculos_phrase not in result.output
    assert cli("new", "zed").exit_code == 0
    listing = cli("list")
    lines = listing.output.splitlines()
    assert lines[0] == f"spec\t{expected}"
    assert lines[1].startswith("zed\t")


def test_import_from_a_hidden_prompt_with_a_passphrase(cli, vectors, speculos_phrase):
    answers = f"{speculos_phrase}\nsecret words\nsecret words\n"
    result = cli("import", "hidden", "--with-passphrase", input=answers)
    assert result.exit_code == 0, result.output
    expected = DeviceIdentity.from_mnemonic(speculos_phrase, "secret words").public_key.hex()
    assert expected in result.output
    assert "secret words" not in result.output
    assert "passphrase:         yes" in result.output


def test_info_on_a_software_device(cli, vectors, speculos_phrase):
    cli("import", "spec", "--mnemonic-file", "-", input=speculos_phrase)
    result = cli("info", "--device", "software:spec")
    assert result.exit_code == 0, result.output
    assert vectors["derived_speculos_seed_id_key"]["seed_id_public_key"] in result.output


def test_info_on_speculos_asks_the_user_to_approve(cli, vectors, speculos_phrase):
    emulator = Emulator(DeviceIdentity.from_mnemonic(speculos_phrase), approver=approve_all)
    with SpeculosServer(emulator.exchange) as server:
        result = cli("info", env={"LEDGERSYNC_DEVICE": f"speculos:127.0.0.1:{server.port}"})
    assert result.exit_code == 0, result.output
    assert "Ledger Sync 1.1.1" in result.output
    assert vectors["derived_speculos_seed_id_key"]["seed_id_public_key"] in result.output
    assert "Check your device and approve: Connect with Ledger Sync?" in result.output


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        (("import", "x", "--mnemonic-file", "-"), "abandon abandon", "a recovery phrase has 12"),
        (("show", "nobody"), None, "no device named 'nobody'"),
        (("new", "../escape"), None, "invalid device name"),
        (("info", "--device", "software:nobody"), None, "no device named 'nobody'"),
        (("info", "--device", "speculos:127.0.0.1:1"), None, "nothing answers at 127.0.0.1:1"),
        (
            ("import", "x", "--mnemonic-file", "/nonexistent/phrase.txt"),
            None,
            "cannot read the recovery phrase from /nonexistent/phrase.txt: "
            "No such file or directory",
        ),
        (
            ("import", "x", "--mnemonic-file", "/"),
            None,
            "cannot read the recovery phrase from /: Is a directory",
        ),
        (("delete", "nobody", "--yes"), None, "no device named 'nobody'"),
        (("rename", "nobody", "somebody"), None, "no device named 'nobody'"),
        (("rename", "nobody", "../x"), None, "invalid device name '../x'"),
    ],
)
def test_errors_are_one_line_not_a_trace(cli, args, input, message):
    result = cli(*args, input=input)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), result.output
    assert "Traceback" not in result.output


def test_a_binary_phrase_file_is_one_sentence(cli, tmp_path):
    phrase_file = tmp_path / "phrase.bin"
    phrase_file.write_bytes(bytes([0xD5, 0x00, 0xFF]) * 10)
    result = cli("import", "x", "--mnemonic-file", str(phrase_file))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot read the recovery phrase from {phrase_file}: it is not UTF-8 text\n"
    )


def test_a_name_is_taken_once(cli):
    assert cli("new", "dup").exit_code == 0
    result = cli("new", "dup")
    assert result.exit_code == 1 and "already exists" in result.output


@pytest.mark.parametrize("value", ["usb", "speculos:nowhere", "software:"])
def test_a_bad_device_value_is_a_usage_error(cli, value):
    result = cli("info", "--device", value)
    assert result.exit_code == 2
    assert "Invalid value for '--device'" in result.output


def test_info_needs_a_device(cli):
    result = cli("info")
    assert result.exit_code == 2 and "--device" in result.output


def test_serve_runs_a_device_other_commands_reach_by_speculos(cli, home, vectors, speculos_phrase):
    cli("import", "spec", "--mnemonic-file", "-", input=speculos_phrase)
    command = [sys.executable, "-c", "from ledgersync.cli.main import main; main()"]
    command += ["device", "serve", "spec", "--port", "0", "--yes"]
    environment = {**os.environ, "LEDGERSYNC_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        announced = server.stdout.readline()  # printed once the port is listening
        assert "as a Ledger Sync app on speculos:127.0.0.1:" in announced, server.stderr.read()
        spec = announced.split()[-1]
        result = cli("info", "--device", spec)
        assert result.exit_code == 0, result.output
        expected = vectors["derived_speculos_seed_id_key"]["seed_id_public_key"]
        assert f"seed-id public key: {expected}" in result.output
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "approved: Connect with Ledger Sync?" in server.stderr.read()


def test_a_custom_attestation_key(cli, tmp_path, vectors):
    key_file = tmp_path / "attestation.hex"
    key_file.write_text("07" * 32 + "\n")
    result = cli("new", "att", "--attestation-key-file", str(key_file))
    assert result.exit_code == 0, result.output
    custom = KeyPair.from_private_key(bytes([7] * 32)).public_key.hex()
    assert f"attestation key:    {custom} (custom key)" in cli("show", "att").output
    default = vectors["device_attestation_keys"]["test_public_key_compressed"]
    assert f"{default} (the app's TEST key)" in cli("new", "plain").output


@pytest.mark.parametrize("content", ["zz", "07" * 31])
def test_a_bad_attestation_key_file(cli, tmp_path, content):
    key_file = tmp_path / "attestation.hex"
    key_file.write_text(content)
    result = cli("new", "att", "--attestation-key-file", str(key_file))
    assert result.exit_code == 2 and "Invalid value" in result.output
    assert "Traceback" not in result.output


def profile_file(home, name):
    return home / "devices" / f"{name}.json"


def test_delete_with_yes(cli, home):
    assert cli("new", "alice").exit_code == 0
    assert cli("new", "bob").exit_code == 0
    result = cli("delete", "alice", "--yes")
    assert result.exit_code == 0, result.output
    assert "Deleted software device 'alice'" in result.output
    assert not profile_file(home, "alice").exists()
    assert cli("list").output.splitlines()[0].startswith("bob\t")
    assert "no device named 'alice'" in cli("show", "alice").output


@pytest.mark.parametrize("typed", [None, "y\n", "yes\n"])
def test_delete_refuses_without_a_terminal_to_ask_on(cli, home, typed):
    """A script's standard input is not a person: it cannot confirm losing the phrase."""
    assert cli("new", "alice").exit_code == 0
    result = cli("delete", "alice", input=typed)
    assert result.exit_code == 1
    assert result.output.startswith("Error: refusing to delete software device 'alice'")
    assert "gone for good" in result.output and "--yes" in result.output
    assert len(result.output.splitlines()) == 1
    assert profile_file(home, "alice").exists()


def test_delete_asks_on_a_terminal(cli, home):
    assert cli("new", "alice").exit_code == 0
    env = {"LEDGERSYNC_HOME": str(home)}
    kept = run_on_a_terminal("device", "delete", "alice", typed="n\n", env=env)
    assert kept.returncode == 1, kept
    assert "gone for good" in kept.stderr and "Delete software device 'alice'" in kept.stderr
    assert profile_file(home, "alice").exists()
    deleted = run_on_a_terminal("device", "delete", "alice", typed="y\n", env=env)
    assert deleted.returncode == 0, deleted
    assert "Deleted software device 'alice'" in deleted.stdout
    assert not profile_file(home, "alice").exists()


def test_rename(cli, home):
    created = cli("new", "alice")
    assert created.exit_code == 0
    phrase = saved_phrase(home, "alice")
    result = cli("rename", "alice", "bob")
    assert result.exit_code == 0, result.output
    assert result.output == "Renamed software device 'alice' to 'bob'.\n"
    assert saved_phrase(home, "bob") == phrase
    assert stat.S_IMODE(profile_file(home, "bob").stat().st_mode) == 0o600
    assert not profile_file(home, "alice").exists()
    seed_id = DeviceIdentity.from_mnemonic(phrase).public_key.hex()
    assert f"seed-id public key: {seed_id}" in cli("show", "bob").output
    assert cli("info", "--device", "software:bob").exit_code == 0


def test_rename_onto_another_device_is_refused(cli, home):
    assert cli("new", "alice").exit_code == 0
    assert cli("new", "bob").exit_code == 0
    phrases = saved_phrase(home, "alice"), saved_phrase(home, "bob")
    result = cli("rename", "alice", "bob")
    assert result.exit_code == 1
    assert result.output.startswith("Error: a device named 'bob' already exists")
    assert (saved_phrase(home, "alice"), saved_phrase(home, "bob")) == phrases


def test_the_device_group_lists_delete_and_rename(cli):
    output = cli("--help").output
    assert "delete" in output and "rename" in output
