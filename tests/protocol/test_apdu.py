"""The pure APDU codecs (protocol.apdu, .trusted, .templates) against the recorded transcripts."""

import coincurve
import pytest

from ledgersync.protocol import crypto
from ledgersync.protocol.apdu import (
    ISSUER_PLACEHOLDER,
    BlockHeader,
    CommandApdu,
    SignatureResponse,
    signature_parity,
    split_response,
)
from ledgersync.protocol.commands import AddMember, CloseStream
from ledgersync.protocol.errors import CryptoError, DecodeError, EncodeError
from ledgersync.protocol.paths import parse_path
from ledgersync.protocol.templates import (
    DeriveTemplate,
    PublishKeyTemplate,
    SeedTemplate,
    decode_template,
    encode_template,
)
from ledgersync.protocol.trusted import (
    TrustedMember,
    TrustedProperties,
    TrustedProperty,
    decode_member_blob,
    encode_member_blob,
    open_member,
)

h = bytes.fromhex
APP_PATH = parse_path("m/0'/16'/0'")


@pytest.fixture(scope="module")
def seed_apdus(vectors):
    return vectors["e2e_apdu_sign_seed_block"]


@pytest.fixture(scope="module")
def derive_apdus(vectors):
    return vectors["e2e_apdu_sign_derive_block"]


def data_of(apdu_hex):
    return CommandApdu.decode(h(apdu_hex)).data


def session_key(transcript):
    return crypto.ecdh_x(
        h(transcript["client_session_private_key"]),
        h(transcript["derived"]["device_session_public_key"]),
    )


# --- framing -------------------------------------------------------------------------------


def test_command_apdu_round_trips_every_recorded_apdu(seed_apdus, derive_apdus):
    recorded = [seed_apdus[key] for key in seed_apdus if key.endswith("_apdu")]
    recorded += [derive_apdus[key] for key in derive_apdus if key.endswith("_apdu")]
    recorded += derive_apdus["parse_apdus"]
    for apdu in recorded:
        assert CommandApdu.decode(h(apdu)).encode() == h(apdu)


@pytest.mark.parametrize(
    "apdu", ["", "e0", "e00300", "e0030000", "e003000001", "e0030000000000", "e00600002102"]
)
def test_command_apdu_refuses_a_short_header_or_a_wrong_lc(apdu):
    with pytest.raises(DecodeError):
        CommandApdu.decode(h(apdu))


def test_command_apdu_refuses_oversize_fields():
    with pytest.raises(EncodeError):
        CommandApdu(ins=3, data=bytes(256))
    with pytest.raises(EncodeError):
        CommandApdu(ins=0x100)


def test_split_response():
    assert split_response(h("01029000")) == (h("0102"), 0x9000)
    assert split_response(h("6985")) == (b"", 0x6985)
    with pytest.raises(DecodeError):
        split_response(h("90"))


def test_block_header_decodes_the_recorded_sign_and_parse_headers(derive_apdus, vectors):
    root = vectors["e2e_ledger_live_success_session"]["root_stream"]["blocks"][0]
    parsed = BlockHeader.decode(data_of(derive_apdus["parse_apdus"][0]))
    assert (parsed.parent.hex(), parsed.issuer.hex()) == (root["parent"], root["issuer"])
    assert parsed.command_count == 1
    signed = BlockHeader.decode(data_of(derive_apdus["sign_header_apdu"]))
    assert signed.issuer == ISSUER_PLACEHOLDER
    assert signed.parent.hex() == root["block_hash_sha256_of_full_block"]
    assert signed.command_count == 3
    assert signed.encode() == data_of(derive_apdus["sign_header_apdu"])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda header: header[:-1],  # truncated
        lambda header: header + b"\x00",  # trailing byte
        lambda header: h("010200") + header[3:],  # two-byte version
        lambda header: header[:3] + h("0221") + header[5:],  # hash announced 33 bytes
    ],
)
def test_block_header_refuses_malformed_headers(derive_apdus, mutate):
    with pytest.raises(DecodeError):
        BlockHeader.decode(mutate(data_of(derive_apdus["sign_header_apdu"])))


def test_signature_response_decodes_the_recorded_finalize(seed_apdus, derive_apdus):
    for transcript in (seed_apdus, derive_apdus):
        response = SignatureResponse.decode(h(transcript["finalize_response"]))
        assert response.signature.hex() == transcript["derived"]["signature"]
        assert (
            response.session_public_key.hex() == transcript["derived"]["device_session_public_key"]
        )
        assert response.encode().hex() == transcript["finalize_response"]
    with pytest.raises(DecodeError):
        SignatureResponse.decode(h(seed_apdus["finalize_response"])[:-1])
    with pytest.raises(DecodeError):
        SignatureResponse.decode(b"")


def test_signature_parity_is_the_y_parity_that_recovers_the_signer():
    for index in range(1, 9):
        secret = crypto.sha256(bytes([index]))
        digest = crypto.sha256(b"block" + bytes([index]))
        signature = crypto.sign_digest(secret, digest)
        r, s = crypto.parse_der_signature(signature)
        compact = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        parity = signature_parity(secret, digest)
        recovered = coincurve.PublicKey.from_signature_and_message(
            compact + bytes([parity]), digest, hasher=None
        )
        assert recovered.format() == crypto.public_key_of(secret)


# --- templates -----------------------------------------------------------------------------

RECIPIENT = h("03c1a121beda1a94418595f1b2fa8a306dfa98bb70a04bc032d208e80ddfd18f86")


def test_templates_encode_exactly_as_ledger_live_sends_them(seed_apdus, derive_apdus):
    assert encode_template(SeedTemplate()) == data_of(seed_apdus["sign_seed_apdu"])
    assert encode_template(DeriveTemplate(APP_PATH)) == data_of(derive_apdus["sign_derive_apdu"])
    assert encode_template(PublishKeyTemplate(RECIPIENT)) == data_of(
        derive_apdus["sign_publish_key_apdu"]
    )
    add = AddMember("Member 1", RECIPIENT, 0xFFFFFFFF)
    assert encode_template(add) == data_of(derive_apdus["sign_add_member_apdu"])
    assert encode_template(CloseStream()) == h("1300")


def test_templates_decode_the_recorded_commands(seed_apdus, derive_apdus):
    assert decode_template(data_of(seed_apdus["sign_seed_apdu"])) == SeedTemplate()
    assert decode_template(data_of(derive_apdus["sign_derive_apdu"])) == DeriveTemplate(APP_PATH)
    assert decode_template(data_of(derive_apdus["sign_publish_key_apdu"])) == PublishKeyTemplate(
        RECIPIENT
    )
    assert decode_template(data_of(derive_apdus["sign_add_member_apdu"])) == AddMember(
        "Member 1", RECIPIENT, 0xFFFFFFFF
    )
    assert decode_template(h("1300")) == CloseStream()


def test_templates_accept_filled_placeholders_and_a_topic(vectors):
    # A finished command (real values where the placeholders go) reads as the same template.
    block = vectors["e2e_ledger_live_success_session"]["app_stream_index0"]["blocks"][0]
    derive, _, publish = (h(command["tlv"]) for command in block["commands"])
    assert decode_template(derive) == DeriveTemplate(APP_PATH)
    assert decode_template(publish) == PublishKeyTemplate(RECIPIENT)
    topic = bytes(range(32))
    assert decode_template(encode_template(SeedTemplate(topic))) == SeedTemplate(topic)


@pytest.mark.parametrize(
    "command",
    [
        "1400",  # EditMember: the app does not sign it
        "1600",  # unknown command
        "1508" + "050480000000" + "0600",  # Derive without all its placeholders
        "1530" + "050480000000" + "0622" + "00" * 34 + "050005000600",  # 34-byte key
        "1208050005000600" + "0600",  # PublishKey recipient of 0 bytes
        "1300" + "00",  # trailing byte after the command
        "10030500" + "01",  # truncated Seed
    ],
)
def test_templates_refuse_what_the_device_cannot_sign(command):
    with pytest.raises(DecodeError):
        decode_template(h(command))


def test_template_values_are_checked():
    with pytest.raises(EncodeError):
        SeedTemplate(bytes(33))
    with pytest.raises(EncodeError):
        PublishKeyTemplate(bytes(32))
    with pytest.raises(EncodeError):
        DeriveTemplate((1 << 32,))


# --- trusted properties --------------------------------------------------------------------


def test_every_recorded_trusted_property_decrypts_to_the_recorded_value(seed_apdus, derive_apdus):
    key = session_key(seed_apdus)
    assert key.hex() == seed_apdus["derived"]["session_key"]
    header = TrustedProperties.decode(h(seed_apdus["sign_header_response"]))
    assert (
        header.open(TrustedProperty.ISSUER, key).hex() == seed_apdus["derived"]["issuer_decrypted"]
    )
    seed = TrustedProperties.decode(h(seed_apdus["sign_seed_response"]))
    derived = seed_apdus["derived"]
    assert [tag for tag, _ in seed.entries] == [0x82, 0x03, 0x04, 0x05]
    assert (
        seed.open(TrustedProperty.XPRIV, key).hex()
        == derived["seed_encrypted_xpriv_decrypted_from_tp_0x82"]
    )
    assert (
        seed.open(TrustedProperty.EPHEMERAL_PUBLIC_KEY, key).hex()
        == derived["ephemeral_public_key_tp_0x03"]
    )
    assert seed.open(TrustedProperty.COMMAND_IV, key).hex() == derived["command_iv_tp_0x04"]
    assert seed.open(TrustedProperty.GROUP_KEY, key).hex() == derived["group_key_tp_0x05"]
    assert seed.encode().hex() == seed_apdus["sign_seed_response"]

    key = session_key(derive_apdus)
    derived = derive_apdus["derived"]
    derive = TrustedProperties.decode(h(derive_apdus["sign_derive_response"]))
    assert derive.open(TrustedProperty.XPRIV, key).hex() == derived["derive_encrypted_xpriv"]
    assert derive.open(TrustedProperty.GROUP_KEY, key).hex() == derived["derive_group_key"]
    add = TrustedProperties.decode(h(derive_apdus["sign_add_member_response"]))
    assert (
        add.open(TrustedProperty.NEW_MEMBER, key).hex()
        == derived["add_member_new_member_plaintext"]
    )
    publish = TrustedProperties.decode(h(derive_apdus["sign_publish_key_response"]))
    assert publish.open(TrustedProperty.XPRIV, key).hex() == derived["publish_key_encrypted_xpriv"]
    assert (
        publish.open(TrustedProperty.NEW_MEMBER, key).hex()
        == derived["publish_key_new_member_plaintext_bug"]
    )


def test_sealing_reuses_the_response_iv_like_the_device(derive_apdus):
    # Re-seal the recorded clear values with the recorded IV: the same bytes come out.
    key = session_key(derive_apdus)
    recorded = TrustedProperties.decode(h(derive_apdus["sign_derive_response"]))
    clear = [(tag, recorded.open(TrustedProperty(tag), key)) for tag, _ in recorded.entries]
    assert TrustedProperties.seal(key, recorded.iv, clear) == recorded


def test_trusted_properties_refuse_a_missing_iv_and_a_wrong_key(derive_apdus):
    with pytest.raises(DecodeError):
        TrustedProperties.decode(h("8604") + bytes(4))
    with pytest.raises(DecodeError):
        TrustedProperties.decode(b"")
    recorded = TrustedProperties.decode(h(derive_apdus["sign_derive_response"]))
    with pytest.raises(CryptoError):
        recorded.open(TrustedProperty.XPRIV, bytes(32))
    with pytest.raises(DecodeError):
        recorded.require(TrustedProperty.ISSUER)


def test_the_member_blob_reads_and_rebuilds_the_recorded_plaintext(derive_apdus):
    plaintext = h(derive_apdus["derived"]["add_member_new_member_plaintext"])
    member = decode_member_blob(plaintext)
    assert member == TrustedMember(RECIPIENT, 0xFFFFFFFF, owns_key=False)
    assert encode_member_blob(member, plaintext[:4]) == plaintext


def test_the_member_blob_checks_its_length_and_checksum(derive_apdus):
    plaintext = bytearray(h(derive_apdus["derived"]["add_member_new_member_plaintext"]))
    with pytest.raises(DecodeError):
        decode_member_blob(bytes(plaintext[:-1]))
    plaintext[10] ^= 1
    with pytest.raises(DecodeError):
        decode_member_blob(bytes(plaintext))


def test_open_member_takes_the_device_response_back(derive_apdus):
    key = session_key(derive_apdus)
    response = TrustedProperties.decode(h(derive_apdus["sign_add_member_response"]))
    assert open_member(response, key).public_key == RECIPIENT
    with pytest.raises(DecodeError):
        open_member(response, bytes(32))


def test_command_encoding_is_what_parse_stream_receives(derive_apdus, vectors):
    # PARSE_STREAM gets each command TLV exactly as it is in the stream.
    root = vectors["e2e_ledger_live_success_session"]["root_stream"]["blocks"][0]
    assert data_of(derive_apdus["parse_apdus"][1]).hex() == root["commands"][0]["tlv"]
