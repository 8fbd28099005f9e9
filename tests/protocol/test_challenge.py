"""Seed-ID challenges, device responses and member attestations.

See docs/protocol.md, "Challenge and attestation".
"""

import pytest

from ledgersync.protocol import crypto
from ledgersync.protocol.challenge import (
    Challenge,
    ChallengeFormatError,
    ChallengeSignatureError,
    ChallengeValueError,
    DeviceAttestation,
    MemberAttestation,
    PubKeyCredential,
    SeedIdResponse,
    build_challenge,
    decode_attestation,
    device_authentication,
    member_authentication,
    sign_seed_id,
)
from ledgersync.protocol.errors import ChallengeError

h = bytes.fromhex


def test_pubkey_credential_bytes(vectors):
    v = vectors["pubkey_credential_bytes"]
    credential = PubKeyCredential.from_json(v["json"])
    assert credential.encode().hex() == v["bytes"]
    assert credential.to_json() == v["json"]
    assert PubKeyCredential.decode_from(h(v["bytes"]), 0) == (credential, len(h(v["bytes"])))


def test_challenge_serialisation_order(vectors):
    v = vectors["challenge_tlv_serialization"]
    fields = v["fields"]
    challenge = Challenge(
        data=h(fields["challengeData"]),
        expiry=fields["expiry_unix"],
        host=fields["host"],
        rp_public_key=h(fields["rp_public_key"]),
        rp_signature=h(fields["rp_signature"]),
        protocol_version=tuple(fields["protocolVersion"]),
    )
    assert challenge.encode().hex() == v["tlv"]
    assert Challenge.decode(h(v["tlv"])) == challenge


def test_backend_challenge(vectors):
    v = vectors["challenge_backend_example"]
    challenge = Challenge.decode(h(v["tlv"]))
    assert challenge.unsigned_tlv().hex() == v["derived"]["unsigned_tlv"]
    assert challenge.hash().hex() == v["derived"]["challenge_hash"]
    challenge.verify_rp_signature()
    assert Challenge.from_json(v["expected_json"]) == challenge
    assert Challenge.from_json(challenge.to_json()) == challenge
    assert challenge.encode().hex() == v["tlv"]


def test_device_default_challenge_has_high_s(vectors):
    v = vectors["challenge_device_app_default"]
    challenge = Challenge.decode(h(v["tlv"]))
    assert challenge.hash().hex() == v["derived"]["challenge_hash"]
    challenge.verify_rp_signature()
    with pytest.raises(ChallengeSignatureError):
        challenge.verify_rp_signature(allow_high_s=False)


def test_recorded_device_login(vectors):
    v = vectors["e2e_get_seed_id"]
    derived = v["derived"]
    challenge = Challenge.decode(h(v["challenge_tlv"]))
    assert challenge.unsigned_tlv().hex() == derived["unsigned_tlv"]
    assert challenge.hash().hex() == derived["challenge_hash"]
    response = SeedIdResponse.decode(h(v["response"]))
    assert response.credential.to_json() == derived["credential_json"]
    assert response.signature.hex() == derived["seed_id_signature"]
    assert response.attestation.credential.public_key.hex() == derived["attestation_public_key"]
    assert response.attestation.signature.hex() == derived["attestation_signature"]
    assert response.attestation.encode().hex() == derived["attestation_result"]
    assert response.encode().hex() == v["response"]
    response.verify(challenge)
    prod = vectors["device_attestation_keys"]["prod_public_key_compressed"]
    assert response.attestation.credential.public_key.hex() == prod
    auth = device_authentication(response)
    assert auth["attestation"] == derived["attestation_result"]
    other = Challenge.decode(h(vectors["challenge_backend_example"]["tlv"]))
    with pytest.raises(ChallengeSignatureError):
        response.verify(other)


def test_recorded_member_login(
    vectors,
):
    v = vectors["e2e_member_software_auth"]
    challenge = Challenge.decode(h(v["challenge_tlv"]))
    assert challenge.hash().hex() == v["derived"]["challenge_hash"]
    trustchain_id = vectors["e2e_ledger_live_success_session"]["trustchain_id"]
    auth = member_authentication(challenge, h(v["member_private_key"]), trustchain_id)
    assert auth["signature"] == v["signature"]
    assert auth["attestation"] == v["attestation"]
    assert auth["credential"]["publicKey"] == v["member_public_key"]
    assert decode_attestation(h(v["attestation"])) == MemberAttestation(trustchain_id)


def test_software_device_login_round_trip(vectors):
    rp = crypto.KeyPair.generate()
    device = crypto.KeyPair.generate()
    attestation_key = h(vectors["device_attestation_keys"]["test_private_key"])
    challenge = build_challenge(rp, "sync.example.org", 1_900_000_000)
    challenge.verify_rp_signature(allow_high_s=False)
    assert Challenge.decode(challenge.encode()) == challenge
    response = sign_seed_id(challenge, device.private_key, attestation_key)
    decoded = SeedIdResponse.decode(response.encode())
    decoded.verify(challenge)
    assert isinstance(decode_attestation(decoded.attestation.encode()), DeviceAttestation)


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda b: b[:-1], ChallengeFormatError),
        (lambda b: b + b"\x00", ChallengeFormatError),
        (lambda b: b"\x01\x01\x06" + b[3:], ChallengeValueError),
        (lambda b: b"\x02" + b[1:], ChallengeValueError),
        (lambda b: b[:3] + b"\x02\x01\x01" + b[6:], ChallengeValueError),
    ],
)
def test_malformed_challenges(vectors, mutate, error):
    tlv = h(vectors["challenge_backend_example"]["tlv"])
    with pytest.raises(error):
        Challenge.decode(mutate(tlv))


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"challenge": {"data": "zz", "expiry": "x"}},
        {
            "version": 0,
            "challenge": {"data": "00" * 16, "expiry": "not a date"},
            "host": "a",
            "rp": [],
            "protocolVersion": {},
        },
        None,
        [],
    ],
)
def test_malformed_challenge_json(value):
    with pytest.raises(ChallengeError):
        Challenge.from_json(value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"challenge": 1}, "challenge.challenge must be a JSON object"),
        ({"challenge": {"data": "00" * 16}}, "challenge.challenge has no 'expiry' field"),
        ({"rp": {}}, "challenge rp must be a non-empty list"),
        ({"rp": [7]}, "challenge rp must be a JSON object"),
        ({"rp": [{"signature": "00"}]}, "challenge rp has no 'credential' field"),
        ({"protocolVersion": "1.0.0"}, "protocolVersion must be a JSON object"),
        ({"host": None}, "host must be a string"),
    ],
)
def test_malformed_challenge_json_says_which_field(vectors, change, message):
    """Each refusal names the field in the client's terms, not Python's."""
    value = {**vectors["challenge_backend_example"]["expected_json"], **change}
    with pytest.raises(ChallengeValueError) as raised:
        Challenge.from_json(value)
    assert str(raised.value) == message


def test_challenge_json_that_is_not_an_object_is_refused_as_such():
    with pytest.raises(ChallengeValueError, match="challenge JSON must be a JSON object"):
        Challenge.from_json([1, 2])


@pytest.mark.parametrize(
    "change",
    [{"version": -1}, {"version": 256}, {"version": 2**63}, {"payloadType": 300}],
)
def test_challenge_json_with_out_of_range_bytes(vectors, change):
    """Found by the security suite: these reached the TLV encoder and raised ValueError."""
    value = {**vectors["challenge_backend_example"]["expected_json"], **change}
    with pytest.raises(ChallengeValueError):
        Challenge.from_json(value)


@pytest.mark.parametrize("data", ["", "02", "0205414243", "03", "000021", "0200ff"])
def test_malformed_attestations(data):
    with pytest.raises(ChallengeError):
        decode_attestation(h(data))
