import base64
import gzip
import json
import zlib

import pytest

from ledgersync.protocol import crypto, userdata
from ledgersync.protocol.errors import CryptoError, DecodeError, ProtocolError

h = bytes.fromhex


def test_recorded_envelope_decrypts(vectors):
    v = vectors["user_data_envelope_v0"]
    key = h(v["stream_private_key"])
    assert userdata.decrypt_user_data(key, h(v["envelope"])).hex() == v["plaintext"]
    derived = v["derived"]
    shared = crypto.ecdh_x(key, h(derived["ephemeral_public_key"]))
    assert shared.hex() == derived["ecdh_x"]
    assert crypto.hmac_sha256(b"", shared).hex() == derived["aes_key"]


def test_envelope_round_trip_and_layout():
    key = crypto.KeyPair.generate().private_key
    envelope = userdata.encrypt_user_data(key, b"accounts")
    assert envelope[0] == 0 and len(envelope) == 1 + 33 + 16 + 16 + len(b"accounts")
    assert userdata.decrypt_user_data(key, envelope) == b"accounts"
    other = crypto.KeyPair.generate().private_key
    with pytest.raises(CryptoError):
        userdata.decrypt_user_data(other, envelope)


@pytest.mark.parametrize("envelope", [b"", b"\x01" + bytes(70), bytes(65)])
def test_bad_envelopes(envelope):
    with pytest.raises(ProtocolError):
        userdata.decrypt_user_data(crypto.KeyPair.generate().private_key, envelope)


@pytest.mark.parametrize(
    "compress",
    [zlib.compress, gzip.compress, lambda d: zlib.compress(d)[2:-4]],
    ids=["zlib", "gzip", "raw-deflate"],
)
def test_cloud_payload_accepts_every_container(compress):
    key = crypto.KeyPair.generate().private_key
    document = {"accounts": [{"id": "js:2:ethereum:0xabc:", "index": 0}], "accountNames": {}}
    raw = json.dumps(document).encode()
    payload = base64.b64encode(userdata.encrypt_user_data(key, compress(raw))).decode()
    assert userdata.decode_cloud_payload(key, payload) == document


def test_cloud_payload_round_trip_writes_zlib():
    key = crypto.KeyPair.generate().private_key
    document = {"accountNames": {"a": "Ünïcode ✓"}}
    payload = userdata.encode_cloud_payload(key, document)
    inner = userdata.decrypt_user_data(key, base64.b64decode(payload))
    assert (
        zlib.decompress(inner)
        == json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert userdata.decode_cloud_payload(key, payload) == document


def test_decompression_is_bounded():
    bomb = zlib.compress(bytes(1_000_000))
    with pytest.raises(DecodeError, match="beyond"):
        userdata.decompress(bomb, max_size=1000)
    assert len(userdata.decompress(bomb, max_size=1_000_000)) == 1_000_000


@pytest.mark.parametrize("payload", ["not base64!", "", base64.b64encode(b"\x00" * 70).decode()])
def test_bad_cloud_payloads(payload):
    with pytest.raises(ProtocolError):
        userdata.decode_cloud_payload(crypto.KeyPair.generate().private_key, payload)


def test_truncated_compressed_data_is_refused():
    with pytest.raises(DecodeError):
        userdata.decompress(zlib.compress(b"x" * 100)[:-6])
