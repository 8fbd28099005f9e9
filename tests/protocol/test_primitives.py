"""Crypto primitives against the vectors recorded from Ledger's own test suites."""

import hashlib

import pytest
from mnemonic import Mnemonic

from ledgersync.protocol import KeyPair, crypto
from ledgersync.protocol.errors import CryptoError, SignatureError

h = bytes.fromhex

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def xprv_to_lkrp(text: str) -> bytes:
    """base58check xprv → private key ‖ chain code (LKRP order), written here for the test."""
    value = 0
    for char in text:
        value = value * 58 + BASE58.index(char)
    raw = value.to_bytes(82, "big")
    payload, checksum = raw[:-4], raw[-4:]
    assert hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum
    chain_code, key = payload[13:45], payload[46:78]
    assert payload[45] == 0
    return key + chain_code


def test_aes_gcm_16_byte_nonce(vectors):
    v = vectors["aes256gcm_16byte_nonce"]
    sealed = crypto.aes_gcm_encrypt(h(v["key"]), h(v["nonce"]), h(v["plaintext"]))
    assert sealed.hex() == v["ciphertext_and_tag"]
    assert crypto.aes_gcm_decrypt(h(v["key"]), h(v["nonce"]), sealed) == h(v["plaintext"])
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 0x03])
    with pytest.raises(CryptoError):
        crypto.aes_gcm_decrypt(h(v["key"]), h(v["nonce"]), tampered)


def test_sha256(vectors):
    v = vectors["sha256"]
    assert crypto.sha256(h(v["input"])).hex() == v["digest"]


def test_symmetric_key_is_hmac_keyed_by_extra(vectors):
    v = vectors["computeSymmetricKey"]
    for case in v["cases"]:
        assert crypto.hmac_sha256(h(case["extra"]), h(v["secret"])).hex() == case["output"]


def test_ecdh_is_raw_x_coordinate(vectors):
    v = vectors["ecdh_x_only"]
    assert crypto.public_key_of(h(v["peer_private_key_for_pub"])).hex() == v["peer_public_key"]
    assert crypto.ecdh_x(h(v["private_key"]), h(v["peer_public_key"])).hex() == v["shared_x"]
    g = vectors["ecdh_openssl_ground_truth"]
    assert crypto.public_key_of(h(g["private_key"])).hex() == g["public_key"]
    assert crypto.ecdh_x(h(g["private_key"]), h(g["peer_public_key"])).hex() == g["shared_x"]


def test_point_multiply_generator(vectors):
    v = vectors["point_multiply_generator"]
    assert crypto.public_key_of(h(v["scalar"])).hex() == v["public_key"]


def test_short_s_signature_verifies(vectors):
    v = vectors["ecdsa_verify_short_S"]
    crypto.verify_signature(h(v["public_key"]), h(v["digest"]), h(v["signature_der"]))
    with pytest.raises(SignatureError):
        crypto.verify_signature(h(v["public_key"]), bytes(32), h(v["signature_der"]))


def test_der_encoding_is_minimal(vectors):
    for case in vectors["der_encode_compact"]["cases"]:
        compact = h(case["compact"])
        r, s = int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:], "big")
        assert crypto.encode_der_signature(r, s).hex() == case["der"]
        assert crypto.parse_der_signature(h(case["der"])) == (r, s)


def test_non_minimal_der_from_old_clients_verifies():
    key = crypto.KeyPair.generate()
    digest = crypto.sha256(b"lenient")
    r, s = crypto.parse_der_signature(key.sign(digest))
    # Old LL-hw kept R and S at 32-byte width: a leading zero stays, giving non-minimal DER.
    body = b"\x02\x21\x00" + r.to_bytes(32, "big") + b"\x02\x21\x00" + s.to_bytes(32, "big")
    crypto.verify_signature(key.public_key, digest, bytes([0x30, len(body)]) + body)


def test_high_s_is_rejected_unless_allowed():
    key = crypto.KeyPair.generate()
    digest = crypto.sha256(b"malleable")
    r, s = crypto.parse_der_signature(key.sign(digest))
    high = crypto.encode_der_signature(r, crypto.CURVE_ORDER - s)
    with pytest.raises(SignatureError, match="high S"):
        crypto.verify_signature(key.public_key, digest, high)
    crypto.verify_signature(key.public_key, digest, high, allow_high_s=True)


def test_signatures_are_low_s_and_deterministic():
    key = crypto.KeyPair.generate()
    for index in range(50):
        digest = crypto.sha256(index.to_bytes(2, "big"))
        signature = key.sign(digest)
        assert crypto.is_low_s(signature)
        assert key.sign(digest) == signature


@pytest.mark.parametrize(
    "signature",
    ["", "3000", "3006020101020101ff", "3006020100020101", "3106020101020101", "30060201010201"],
)
def test_malformed_der_is_a_signature_error(signature):
    with pytest.raises(SignatureError):
        crypto.parse_der_signature(h(signature))


def test_bip32_matches_the_published_vector(vectors):
    example = vectors["bip32_vectors_note"]["example"]
    root = xprv_to_lkrp(example["root_xprv"])
    expected = xprv_to_lkrp(example["expected_xprv"])
    assert crypto.derive_path(root, [crypto.HARDENED]) == expected


def test_bip32_test_vector_1_non_hardened_step():
    # BIP-0032 test vector 1: m/0H/1 from seed 000102…0f.
    master = crypto.master_xpriv_from_seed(h("000102030405060708090a0b0c0d0e0f"))
    child = crypto.derive_path(master, [crypto.HARDENED, 1])
    assert child[:32].hex() == "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368"
    assert child[32:].hex() == "2a7857631386ba23dacac34180dd1983734e444fdbf774041578e9b6adb37c19"


def test_speculos_seed_id_key(vectors):
    v = vectors["derived_speculos_seed_id_key"]
    seed = Mnemonic.to_seed(v["mnemonic"], passphrase="")
    xpriv = crypto.derive_path(
        crypto.master_xpriv_from_seed(seed), [int(i, 16) for i in v["path_indices_hex"]]
    )
    assert xpriv[:32].hex() == v["seed_id_private_key"]
    assert xpriv[32:].hex() == v["seed_id_chain_code"]
    assert crypto.public_key_of(xpriv[:32]).hex() == v["seed_id_public_key"]


def test_attestation_test_key_pair(vectors):
    v = vectors["device_attestation_keys"]
    assert crypto.public_key_of(h(v["test_private_key"])).hex() == v["test_public_key_compressed"]


@pytest.mark.parametrize("key", ["", "00" * 32, "ff" * 32, "01" * 31])
def test_invalid_private_keys_are_refused(key):
    with pytest.raises(CryptoError):
        crypto.public_key_of(h(key))


@pytest.mark.parametrize("key", ["", "04" + "11" * 32, "02" + "ff" * 32, "05" + "11" * 32])
def test_invalid_public_keys_are_refused(key):
    with pytest.raises(CryptoError):
        crypto.load_public_key(h(key))


def test_a_public_key_is_parsed_once_and_a_bad_one_refused_every_time() -> None:
    """Parsing is memoized (a decompression costs about a verification): the same bytes give
    the same parsed key; a failure is never remembered as a success."""
    key = KeyPair.generate().public_key
    assert crypto.load_public_key(key) is crypto.load_public_key(bytearray(key))
    not_on_the_curve = b"\x02" + b"\xff" * 32  # x is not below the field's prime
    for _ in range(2):
        with pytest.raises(CryptoError, match="not a point"):
            crypto.load_public_key(not_on_the_curve)
