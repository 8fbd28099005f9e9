"""``ledgersync inspect`` on recorded and tampered trustchains."""

import json

import pytest
from click.testing import CliRunner

from ledgersync.cli.main import main


@pytest.fixture(scope="module")
def session(vectors):
    return vectors["e2e_ledger_live_success_session"]


@pytest.fixture
def backend_json(session):
    # The shape GET /v1/trustchain/{id} returns: keys are not paths (spec pitfall 10).
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
    assert "Error: cannot read" in result.output
    assert "Traceback" not in result.output


def test_missing_file(tmp_path):
    result = run(str(tmp_path / "absent.json"))
    assert result.exit_code == 2


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
