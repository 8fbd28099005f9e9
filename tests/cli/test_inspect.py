"""``ledgersync inspect`` on recorded and tampered trustchains."""

import json

import pytest
from click.testing import CliRunner

from ledgersync.cli.main import main

from .terminal import run_on_a_terminal


@pytest.fixture(scope="module")
def session(vectors):
    return vectors["e2e_ledger_live_success_session"]


@pytest.fixture
def backend_json(session):
    # The shape GET /v1/trustchain/{id} returns: keys are not paths (docs/protocol.md,
    # "The backend's JSON").
    return json.dumps(
        {"m/": session["root_stream"]["hex"], "m/16'": session["app_stream_index1_rotated"]["hex"]}
    )


def run(*args, input=None):
    return CliRunner().invoke(main, ["inspect", *args], input=input)


def test_valid_trustchain_text(session, backend_json):
    result = run("-", input=backend_json)
    assert result.exit_code == 0, result.output
    assert session["trustchain_id"] in result.output
    assert "VALID" in result.output and "INVALID" not in result.output
    assert "m/0'/16'/1'" in result.output
    for member in ("Member 1", "Member 3"):
        assert session["software_members"][member]["public_key"] in result.output
    assert "(creator)" in result.output


def test_valid_trustchain_json(session, backend_json, tmp_path):
    source = tmp_path / "tree.json"
    source.write_text(backend_json)
    result = run(str(source), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["valid"] is True and report["violation"] is None
    assert report["trustchain_id"] == session["trustchain_id"]
    root, app = report["streams"]
    assert root["path"] == "m/" and root["label"] == "m/"
    assert app["path"] == "m/0'/16'/1'" and app["label"] == "m/16'"
    assert app["closed"] is False
    assert [m["name"] for m in app["members"]] == [None, "Member 1", "Member 3"]
    assert app["members"][1]["permissions"] == 0xFFFFFFFF
    assert app["members"][1]["holds_key"] is True
    assert len(app["key_holders"]) == 3
    recorded = session["app_stream_index1_rotated"]["blocks"]
    assert [b["hash"] for b in app["blocks"]] == [
        b["block_hash_sha256_of_full_block"] for b in recorded
    ]
    assert [c["type"] for c in app["blocks"][0]["commands"]] == [
        "Derive",
        "AddMember",
        "PublishKey",
    ]


def test_single_hex_stream(session):
    result = run("-", "--json", input=session["app_stream_index0"]["hex"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["trustchain_id"] is None
    assert report["streams"][0]["path"] == "m/0'/16'/0'"


def test_tampered_trustchain_names_the_violation(session):
    stream = bytearray.fromhex(session["app_stream_index0"]["hex"])
    stream[-5] ^= 0x01  # inside the last block's signature
    tree = json.dumps({"m/": session["root_stream"]["hex"], "m/16'": stream.hex()})
    result = run("-", input=tree)
    assert result.exit_code == 1
    assert "INVALID" in result.output
    assert "stream m/0'/16'/0', block 1: [signature]" in result.output
    report = json.loads(run("-", "--json", input=tree).output)
    assert report["violation"]["rule"] == "signature"
    assert report["violation"]["block"] == 1
    assert report["violation"]["stream"] == "m/0'/16'/0'"


def test_truncated_stream_is_invalid(session):
    result = run("-", "--json", input=session["root_stream"]["hex"][:-4])
    assert result.exit_code == 1
    assert json.loads(result.output)["violation"]["rule"] == "decode"


def test_derived_stream_linked_to_another_root(session):
    tree = json.dumps(
        {"m/": session["root_stream"]["hex"], "x": session["app_stream_index0"]["hex"]}
    )
    assert run("-", input=tree).exit_code == 0
    other_root = bytearray.fromhex(session["root_stream"]["hex"])
    other_root[10] ^= 0xFF  # the random parent of the Seed block: changes the seed hash only
    result = run(
        "-",
        "--json",
        input=json.dumps({"m/": other_root.hex(), "x": session["app_stream_index0"]["hex"]}),
    )
    assert result.exit_code == 1
    # Changing the parent breaks the Seed block's own signature first.
    assert json.loads(result.output)["violation"]["rule"] == "signature"


@pytest.mark.parametrize("text", ["", "not hex", '{"m/": 12}', "{broken json", "abc"])
def test_unreadable_input(text):
    result = run("-", input=text)
    assert result.exit_code == 2
    assert result.output.startswith("Error: standard input is not a trustchain file: ")
    assert len(result.output.splitlines()) == 1
    assert "Traceback" not in result.output


def test_missing_file(tmp_path):
    absent = tmp_path / "absent.json"
    result = run(str(absent))
    assert result.exit_code == 2
    assert result.output == f"Error: cannot read {absent}: No such file or directory\n"


@pytest.fixture
def binary_file(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(bytes.fromhex("ffd8ffe000104a464946d5") + bytes(range(256)))
    return path


def test_a_binary_file_is_not_a_trustchain_file(binary_file):
    result = run(str(binary_file))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {binary_file} is not a trustchain file: it is binary, not text (expected "
        "hex, or the JSON object GET /v1/trustchain/{id} returns)\n"
    )
    assert "codec" not in result.output


def test_binary_standard_input_is_not_a_trustchain_file(binary_file):
    result = run("-", input=binary_file.read_bytes())
    assert result.exit_code == 2
    assert result.output.startswith("Error: standard input is not a trustchain file: it is binary")


def test_no_argument_on_a_terminal_prints_the_usage():
    """Not a silent wait for standard input that a person would take for a hang."""
    result = run_on_a_terminal("inspect")
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr.startswith("Usage: ledgersync inspect [OPTIONS] [SOURCE]")
    assert "SOURCE is a file (or - for standard input)" in result.stderr


def test_a_dash_reads_the_terminal(backend_json, session):
    """``inspect -`` on a terminal still reads what is pasted (up to end of file, Ctrl-D)."""
    # One line per stream: a terminal's line editor holds at most 4095 characters.
    pasted = json.dumps(json.loads(backend_json), indent=1)
    result = run_on_a_terminal("inspect", "-", "--json", typed=pasted + "\n\x04")
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["trustchain_id"] == session["trustchain_id"]


def test_no_argument_without_a_terminal_reads_standard_input(backend_json):
    assert run(input=backend_json).exit_code == 0


def _violation(streams):
    result = run("-", "--json", input=json.dumps([s.hex() for s in streams]))
    assert result.exit_code == 1, result.output
    return json.loads(result.output)["violation"]


def test_tree_rules_between_streams():
    from ledgersync.protocol import KeyPair, application_path, builders

    device, intruder = KeyPair.generate(), KeyPair.generate()
    seed, root_xpriv = builders.seed_block(device)
    app, _ = builders.derive_block(device, root_xpriv, application_path(16, 0), seed.hash())
    assert run("-", input=json.dumps([seed.encode().hex(), app.encode().hex()])).exit_code == 0
    other_seed, _ = builders.seed_block(device)
    assert _violation([seed.encode(), other_seed.encode()])["rule"] == "duplicate-stream"
    assert _violation([seed.encode(), app.encode(), app.encode()]) == {
        "stream": "m/0'/16'/0'",
        "block": 0,
        "rule": "duplicate-stream",
        "message": "two streams at m/0'/16'/0'",
    }
    stolen, _ = builders.derive_block(intruder, root_xpriv, application_path(16, 1), seed.hash())
    violation = _violation([seed.encode(), stolen.encode()])
    assert violation["rule"] == "derive-issuer" and violation["stream"] == "m/0'/16'/1'"
