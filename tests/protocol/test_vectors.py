"""The recorded Ledger Live trustchain and the codec vectors, byte for byte."""

import pytest

from ledgersync.protocol import (
    AddMember,
    Derive,
    PublishKey,
    Seed,
    crypto,
    decode_block,
    decode_command,
    decode_stream,
    decode_stream_blocks,
    encode_command,
    encode_stream,
    parse_path,
    read_key,
    resolve_stream,
    resolve_tree,
)
from ledgersync.protocol.errors import CryptoError, DecodeError, ResolutionError
from ledgersync.protocol.keys import unwrap_xpriv
from ledgersync.protocol.paths import format_path

h = bytes.fromhex
STREAMS = ("root_stream", "app_stream_index0", "app_stream_index1_rotated")


@pytest.fixture(scope="module")
def session(vectors):
    return vectors["e2e_ledger_live_success_session"]


@pytest.fixture(scope="module")
def tree(session):
    return resolve_tree([h(session[name]["hex"]) for name in STREAMS])


def test_recorded_blocks_decode_and_reencode_exactly(session):
    for name in STREAMS:
        stream = h(session[name]["hex"])
        blocks = decode_stream_blocks(stream)
        assert encode_stream(b.block for b in blocks) == stream
        for encoded, recorded in zip(blocks, session[name]["blocks"], strict=True):
            block = encoded.block
            assert block.encode().hex() == recorded["hex"]
            assert block.parent.hex() == recorded["parent"]
            assert block.issuer.hex() == recorded["issuer"]
            assert block.signature.hex() == recorded["signature_der"]
            assert len(block.encode_unsigned()) == recorded["unsigned_hex_len"]
            digest = recorded["signing_digest_sha256_of_block_without_signature_tlv"]
            assert block.signing_digest().hex() == digest
            assert block.hash().hex() == recorded["block_hash_sha256_of_full_block"]
            assert encoded.hash() == block.hash()
            block.verify_signature()
            for command, expected in zip(block.commands, recorded["commands"], strict=True):
                assert type(command).__name__ == expected["type"]
                assert encode_command(command).hex() == expected["tlv"]


def test_recorded_trustchain_resolves(session, tree):
    assert tree.trustchain_id == session["trustchain_id"]
    assert tree.root.creator.hex() == session["device_seed_id_public_key"]
    seed = session["root_stream"]["blocks"][0]["commands"][0]
    assert tree.root.group_key.hex() == seed["group_key"]
    assert tree.root.topic == b""
    assert [m.public_key.hex() for m in tree.root.members] == [session["device_seed_id_public_key"]]
    assert [format_path(p) for p in sorted(tree.derived)] == ["m/0'/16'/0'", "m/0'/16'/1'"]
    members = session["software_members"]
    expected_names = {
        "m/0'/16'/0'": ["Member 1", "Member 2"],
        "m/0'/16'/1'": ["Member 1", "Member 3"],
    }
    for name in STREAMS[1:]:
        recorded = session[name]
        stream = tree.get(parse_path(recorded["path"]))
        assert stream is not None
        assert stream.path_text == recorded["path"]
        assert stream.group_key.hex() == recorded["blocks"][0]["commands"][0]["group_key"]
        assert stream.stream_id.hex() == recorded["blocks"][0]["block_hash_sha256_of_full_block"]
        assert [m.name for m in stream.added_members] == expected_names[recorded["path"]]
        for member in stream.added_members:
            assert member.public_key.hex() == members[member.name]["public_key"]
            assert member.permissions == 0xFFFFFFFF
            assert member.owns_key
        assert stream.members[0].public_key.hex() == session["device_seed_id_public_key"]
        assert not stream.closed
    assert tree.application_index(16) == 1


def test_wallet_sync_encryption_keys(session, tree):
    members = session["software_members"]
    cases = [
        ("app_stream_index0", "Member 1", "app_xpriv_decrypted_by_member1"),
        ("app_stream_index0", "Member 2", "app_xpriv_decrypted_by_member2"),
        ("app_stream_index1_rotated", "Member 1", "app_xpriv_decrypted_by_member1"),
        ("app_stream_index1_rotated", "Member 3", "app_xpriv_decrypted_by_member3"),
    ]
    for stream_name, member, xpriv_key in cases:
        derived = session[stream_name]["derived"]
        key = read_key(
            tree, h(members[member]["private_key"]), parse_path(session[stream_name]["path"])
        )
        assert key.xpriv.hex() == derived[xpriv_key]
        assert key.private_key.hex() == derived["wallet_sync_encryption_key"]
        assert key.public_key == tree.get(parse_path(session[stream_name]["path"])).group_key


def test_ecdh_secrets_of_the_recorded_publish_keys(session):
    derived = session["app_stream_index0"]["derived"]
    blocks = decode_stream(h(session["app_stream_index0"]["hex"]))
    first_publish = blocks[0].commands[2]
    second_publish = blocks[1].commands[1]
    members = session["software_members"]
    assert isinstance(first_publish, PublishKey) and isinstance(second_publish, PublishKey)
    member1 = h(members["Member 1"]["private_key"])
    member2 = h(members["Member 2"]["private_key"])
    assert (
        crypto.ecdh_x(member1, first_publish.ephemeral_public_key).hex()
        == derived["ecdh_x_member1"]
    )
    assert (
        crypto.ecdh_x(member2, second_publish.ephemeral_public_key).hex()
        == derived["ecdh_x_member2"]
    )


def test_member_cannot_read_a_stream_it_was_not_given(session, tree):
    member2 = h(session["software_members"]["Member 2"]["private_key"])
    with pytest.raises(CryptoError, match="no key was published"):
        read_key(tree, member2, parse_path("m/0'/16'/1'"))


def test_member_signatures_are_reproduced_byte_for_byte(session):
    member1 = h(session["software_members"]["Member 1"]["private_key"])
    for name in ("app_stream_index0", "app_stream_index1_rotated"):
        block = decode_stream(h(session[name]["hex"]))[1]
        assert block.issuer == crypto.public_key_of(member1)
        resigned = block.signed_with(member1)
        assert resigned.signature == block.signature
        assert resigned.encode() == block.encode()


def test_put_commands_example_is_the_second_block(session):
    example = session["put_commands_request_example"]
    assert example["path"] == session["app_stream_index0"]["path"]
    assert example["blocks"] == [session["app_stream_index0"]["blocks"][1]["hex"]]


def test_addmember_permission_encoding(vectors):
    v = vectors["addmember_permission_encoding"]
    for case in v["cases"]:
        command = AddMember(case["name"], h(v["member_public_key"]), case["permissions"])
        assert encode_command(command).hex() == case["command_tlv"]
        assert decode_command(h(case["command_tlv"])) == command


def test_sdk_block_hash_mock(vectors):
    v = vectors["sdk_block_hash_mock"]
    assert crypto.sha256(h(v["block_hex"])).hex() == v["hash"]
    with pytest.raises(DecodeError):  # a structural mock with 2-byte hashes is no valid block
        decode_block(h(v["block_hex"]))


def test_sdk_mock_streams_parse_and_chain(vectors):
    v = vectors["sdk_mock_app_stream"]
    blocks = decode_stream_blocks(h(v["stream_hex"]))
    assert [b.encoded.hex() for b in blocks] == [b["hex"] for b in v["blocks"]]
    assert blocks[1].block.parent == blocks[0].hash()
    derive = blocks[0].block.commands[0]
    assert isinstance(derive, Derive) and format_path(derive.path) == v["expected_path"]
    with pytest.raises(ResolutionError) as caught:  # fake issuer: nothing verifies
        resolve_stream(h(v["stream_hex"]))
    assert caught.value.rule == "signature" and caught.value.height == 0
    rotated = decode_block(h(vectors["sdk_mock_block_rotated_path"]["block_hex"]))
    assert isinstance(rotated.commands[0], Derive)
    assert format_path(rotated.commands[0].path) == "m/0'/16'/1'"


def test_legacy_cbc_era_block_parses_and_resolves(vectors):
    v = vectors["legacy_cbc_era_derive_block"]
    stream = h(v["stream_hex"])
    (block,) = decode_stream(stream)
    assert block.encode() == stream
    derive = block.commands[0]
    assert isinstance(derive, Derive) and len(derive.encrypted_xpriv) == 64
    resolved = resolve_stream(stream)
    data = [
        {"id": m.public_key.hex(), "name": m.name, "permissions": m.permissions}
        for m in resolved.added_members
    ]
    assert data == v["expected_members_data"]
    with pytest.raises(CryptoError, match="legacy AES-CBC"):
        unwrap_xpriv(bytes(31) + b"\x01", resolved.keys[block.issuer])


def test_legacy_device_fixtures_parse(vectors):
    for fixture in vectors["legacy_app_unit_test_streams"]["streams"].values():
        stream = h(fixture["hex"])
        blocks = decode_stream(stream)
        assert encode_stream(blocks) == stream
        assert [b.encode().hex() for b in blocks] == [b["hex"] for b in fixture["blocks"]]
        seed = blocks[0].commands[0]
        assert isinstance(seed, Seed)
