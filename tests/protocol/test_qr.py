"""QR pairing messages: framing, the session cipher, digits and the scanned URL."""

from __future__ import annotations

import base64
import itertools
import json

import pytest

from ledgersync.protocol import crypto, qr
from ledgersync.protocol.crypto import KeyPair, Random


def counter_random() -> Random:
    counter = itertools.count(1)
    return lambda n: bytes(next(counter) % 256 for _ in range(n))


def test_message_round_trip() -> None:
    message = qr.Message("02" + "ab" * 32, "InitiateHandshake", {"ephemeral_public_key": "03"})
    assert qr.parse_message(message.encode()) == message
    assert json.loads(message.encode())["version"] == 1


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"version":2,"publisher":"a","message":"m","payload":{}}', "version"),
        ('{"version":true,"publisher":"a","message":"m","payload":{}}', "version"),
        ('{"version":1,"publisher":1,"message":"m","payload":{}}', "publisher"),
        ('{"version":1,"publisher":"a","message":null,"payload":{}}', "message"),
        ('{"version":1,"publisher":"a","message":"m","payload":[]}', "payload"),
    ],
)
def test_bad_frames_are_rejected(frame: str, reason: str) -> None:
    with pytest.raises(qr.QRFrameError, match=reason):
        qr.parse_message(frame)


def test_both_sides_derive_the_same_session_key() -> None:
    host, candidate = KeyPair.generate(), KeyPair.generate()
    host_cipher = qr.SessionCipher.from_ecdh(host.private_key, candidate.public_key)
    candidate_cipher = qr.SessionCipher.from_ecdh(candidate.private_key, host.public_key)
    assert (
        host_cipher.key
        == candidate_cipher.key
        == crypto.ecdh_x(host.private_key, candidate.public_key)
    )
    payload = host_cipher.encrypt_payload({"digits": 3, "connected": False})
    message = qr.Message(host.public_key.hex(), "HandshakeChallenge", payload)
    assert candidate_cipher.decrypt_message(message) == {"digits": 3, "connected": False}
    assert "session" not in repr(host_cipher) and host_cipher.key.hex() not in repr(host_cipher)


def test_encrypted_layout_is_nonce_ciphertext_tag() -> None:
    key = bytes(range(32))
    cipher = qr.SessionCipher(key)
    blob = base64.b64decode(cipher.encrypt({"a": 1}, counter_random()))
    nonce, sealed = blob[:16], blob[16:]
    assert nonce == bytes(range(1, 17))
    assert crypto.aes_gcm_decrypt(key, nonce, sealed) == b'{"a":1}'


def test_decryption_failures_are_one_error() -> None:
    cipher = qr.SessionCipher(bytes(32))
    other = qr.SessionCipher(bytes(31) + b"\x01")
    sealed = cipher.encrypt({"x": 1})
    for bad in (other.encrypt({"x": 1}), "!!!", base64.b64encode(b"short").decode(), sealed[:-4]):
        with pytest.raises(qr.QRDecryptionError):
            cipher.decrypt(bad)
    not_object = qr.Message("a", "HandshakeCompletionSucceeded", {"encrypted": cipher.encrypt(1)})
    with pytest.raises(qr.QRDecryptionError):
        cipher.decrypt_message(not_object)


def test_clear_messages_are_not_decrypted() -> None:
    cipher = qr.SessionCipher(bytes(32))
    with pytest.raises(qr.QRFrameError, match="not encrypted"):
        cipher.decrypt_message(qr.Message("a", "Failure", {"type": "X", "message": "y"}))
    with pytest.raises(qr.QRFrameError, match="no encrypted payload"):
        cipher.decrypt_message(qr.Message("a", "TrustchainAddedMember", {}))


def test_digits_are_bytes_modulo_ten() -> None:
    assert qr.random_digits(3, lambda n: bytes([9, 10, 255])) == "905"
    assert len(qr.random_digits()) == 3


def test_pairing_url_turns_http_into_ws() -> None:
    key = KeyPair.generate().public_key
    assert (
        qr.pairing_url("https://api.example/", key) == f"wss://api.example/v1/qr?host={key.hex()}"
    )
    assert qr.pairing_url("http://127.0.0.1:9", key).startswith("ws://127.0.0.1:9/v1/qr?host=")
    assert qr.parse_pairing_url(qr.pairing_url("http://x", key)) == key


def test_scanned_texts_that_are_not_pairing_urls() -> None:
    with pytest.raises(qr.QRCodeError) as info:
        qr.parse_pairing_url("https://example.com/nothing")
    assert not info.value.legacy_import
    legacy = base64.b64encode(bytes((0x64, 0, 3, 0)) + bytes(120)).decode()
    assert qr.is_legacy_import(legacy)
    with pytest.raises(qr.QRCodeError) as info:
        qr.parse_pairing_url(legacy)
    assert info.value.legacy_import
    assert not qr.is_legacy_import(base64.b64encode(bytes(124)).decode())
    assert not qr.is_legacy_import("short")
    for bad in ("ws://x/v1/qr?host=abc", "ws://x/v1/qr?host=" + "00" * 33):
        with pytest.raises(qr.QRCodeError, match="host key"):
            qr.parse_pairing_url(bad)
