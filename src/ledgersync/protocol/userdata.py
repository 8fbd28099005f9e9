"""User data encryption (docs/protocol.md, "User data") and the Cloud Sync payload wrapping.

Envelope: ``0x00 ‖ ephemeral public key (33) ‖ IV (16) ‖ tag (16) ‖ ciphertext``; note the tag
*before* the ciphertext, unlike key wrapping. The AES key is
HMAC-SHA256(key = empty, message = ECDH x-coordinate).

Cloud Sync payload: ``base64(envelope(compress(UTF-8 JSON)))``. We write zlib; we read zlib,
gzip and raw deflate, as Ledger's auto-detecting decoder does.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import zlib
from typing import Any

from . import crypto
from .crypto import Random
from .errors import CryptoError, DecodeError

ENVELOPE_VERSION = 0
_HEADER_LENGTH = 1 + 33 + crypto.GCM_IV_LENGTH + crypto.GCM_TAG_LENGTH
#: Default bound on a decompressed Cloud Sync document (the server's default payload limit).
DEFAULT_MAX_DOCUMENT_SIZE = 8 * 1024 * 1024


def _symmetric_key(shared_x: bytes) -> bytes:
    return crypto.hmac_sha256(b"", shared_x)


def encrypt_user_data(key: bytes, plaintext: bytes, random: Random = os.urandom) -> bytes:
    """Encrypt to the holder of the 32-byte application key (walletSyncEncryptionKey)."""
    ephemeral = crypto.KeyPair.generate(random)
    aes_key = _symmetric_key(ephemeral.ecdh(crypto.public_key_of(key)))
    iv = random(crypto.GCM_IV_LENGTH)
    sealed = crypto.aes_gcm_encrypt(aes_key, iv, plaintext)
    ciphertext, tag = sealed[: -crypto.GCM_TAG_LENGTH], sealed[-crypto.GCM_TAG_LENGTH :]
    return bytes((ENVELOPE_VERSION,)) + ephemeral.public_key + iv + tag + ciphertext


def decrypt_user_data(key: bytes, envelope: bytes) -> bytes:
    if len(envelope) < _HEADER_LENGTH:
        raise DecodeError(f"user data envelope is {len(envelope)} bytes, shorter than its header")
    if envelope[0] != ENVELOPE_VERSION:
        raise DecodeError(f"unsupported user data envelope version {envelope[0]}")
    ephemeral = envelope[1:34]
    iv = envelope[34:50]
    tag = envelope[50:66]
    ciphertext = envelope[66:]
    aes_key = _symmetric_key(crypto.ecdh_x(key, ephemeral))
    return crypto.aes_gcm_decrypt(aes_key, iv, ciphertext + tag)


def decompress(data: bytes, max_size: int = DEFAULT_MAX_DOCUMENT_SIZE) -> bytes:
    """Inflate gzip, zlib or raw deflate (detected), refusing output beyond ``max_size``."""
    if data[:2] == b"\x1f\x8b":
        wbits = 16 + zlib.MAX_WBITS
    elif len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
        wbits = zlib.MAX_WBITS
    else:
        wbits = -zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        output = inflater.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise DecodeError(f"payload is not valid compressed data: {exc}") from exc
    if len(output) > max_size or inflater.unconsumed_tail:
        raise DecodeError(f"payload inflates beyond {max_size} bytes")
    if not inflater.eof:
        raise DecodeError("payload is truncated compressed data")
    return output


def encode_cloud_payload(key: bytes, document: Any, random: Random = os.urandom) -> str:
    """JSON → zlib → envelope → base64, the ``payload`` of a Cloud Sync write."""
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(encrypt_user_data(key, zlib.compress(text), random)).decode("ascii")


def decode_cloud_payload(
    key: bytes, payload: str, max_size: int = DEFAULT_MAX_DOCUMENT_SIZE
) -> Any:
    try:
        envelope = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError("payload is not base64") from exc
    try:
        plaintext = decrypt_user_data(key, envelope)
    except CryptoError as exc:
        raise CryptoError(f"payload does not decrypt with this key: {exc}") from exc
    try:
        return json.loads(decompress(plaintext, max_size).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError("decrypted payload is not UTF-8 JSON") from exc
