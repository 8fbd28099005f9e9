"""QR-code pairing messages (docs/protocol.md, "QR pairing messages"), sans I/O.

Two instances pair over a websocket relay at ``<trustchain api, http→ws>/v1/qr?host=<hex>``;
that URL is the QR code. Rules this module enforces:

* every frame is JSON ``{"version": 1, "publisher": str, "message": str, "payload": object}``;
  a frame breaking this is rejected (:class:`QRFrameError`);
* the session key is the raw ECDH x-coordinate of the two ephemeral keys (no KDF);
* an encrypted payload is ``{"encrypted": base64(nonce(16) ‖ AES-256-GCM(key, nonce, UTF-8 JSON)
  ‖ tag(16))}``; any failure to open one is a single :class:`QRDecryptionError`;
* ``InitiateHandshake`` and ``Failure`` travel in clear, every other message is encrypted;
* the check code is three digits, each a random byte modulo 10.

Randomness is a parameter; nothing here touches a socket.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from . import crypto
from .crypto import Random
from .errors import CryptoError, DecodeError

QR_PROTOCOL_VERSION = 1
DIGITS_COUNT = 3

_HOST_PARAMETER = re.compile(r"host=([0-9A-Fa-f]+)")
_BASE64_CHARSET = re.compile(r"^[A-Za-z0-9+/=]+$")
_BASE64_STRUCTURE = re.compile(r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
#: Header of the pre-Ledger-Sync "export accounts" QR code (base64 data, at least 100 chars).
_LEGACY_IMPORT_HEADER = bytes((0x64, 0x00, 0x03, 0x00))
_LEGACY_IMPORT_MIN_LENGTH = 100


class MessageType(StrEnum):
    INITIATE_HANDSHAKE = "InitiateHandshake"
    HANDSHAKE_CHALLENGE = "HandshakeChallenge"
    COMPLETE_HANDSHAKE_CHALLENGE = "CompleteHandshakeChallenge"
    HANDSHAKE_COMPLETION_SUCCEEDED = "HandshakeCompletionSucceeded"
    TRUSTCHAIN_SHARE_CREDENTIAL = "TrustchainShareCredential"
    TRUSTCHAIN_REQUEST_CREDENTIAL = "TrustchainRequestCredential"
    TRUSTCHAIN_ADDED_MEMBER = "TrustchainAddedMember"
    FAILURE = "Failure"


#: Messages whose payload is sent in clear.
CLEAR_MESSAGES = frozenset({MessageType.INITIATE_HANDSHAKE.value, MessageType.FAILURE.value})


class FailureType(StrEnum):
    HANDSHAKE_COMPLETION_FAILED = "HANDSHAKE_COMPLETION_FAILED"
    UNEXPECTED_SHARE_CREDENTIAL = "UNEXPECTED_SHARE_CREDENTIAL"
    UNEXPECTED_REQUEST_CREDENTIAL = "UNEXPECTED_REQUEST_CREDENTIAL"


class QRFrameError(DecodeError):
    """A relay frame that is not a version-1 pairing message."""


class QRDecryptionError(CryptoError):
    """An encrypted payload that cannot be opened with the session key (or is not JSON)."""


class QRCodeError(DecodeError):
    """A scanned text that is not a pairing URL."""

    def __init__(self, message: str, *, legacy_import: bool = False) -> None:
        super().__init__(message)
        #: True when the text is the legacy "export accounts" QR code of older Ledger Live.
        self.legacy_import = legacy_import


@dataclass(frozen=True, slots=True)
class Message:
    publisher: str
    message: str
    payload: dict[str, Any]
    version: int = QR_PROTOCOL_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "publisher": self.publisher,
            "message": self.message,
            "payload": self.payload,
        }

    def encode(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))


def parse_message(frame: str | bytes) -> Message:
    """Parse one relay frame; raises :class:`QRFrameError` for anything but a v1 message."""
    try:
        value = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise QRFrameError("pairing frame is not JSON") from exc
    if not isinstance(value, dict):
        raise QRFrameError("pairing frame is not a JSON object")
    version = value.get("version")
    if version != QR_PROTOCOL_VERSION or isinstance(version, bool):
        raise QRFrameError(f"pairing frame version must be 1, got {version!r}")
    publisher, message, payload = value.get("publisher"), value.get("message"), value.get("payload")
    if not isinstance(publisher, str):
        raise QRFrameError("pairing frame publisher must be a string")
    if not isinstance(message, str):
        raise QRFrameError("pairing frame message must be a string")
    if not isinstance(payload, dict):
        raise QRFrameError("pairing frame payload must be an object")
    return Message(publisher, message, payload)


@dataclass(frozen=True)
class SessionCipher:
    """Encrypts and decrypts pairing payloads with the 32-byte ECDH session key."""

    key: bytes = field(repr=False)

    @classmethod
    def from_ecdh(cls, own_secret: bytes, peer_public_key: bytes) -> SessionCipher:
        return cls(crypto.ecdh_x(own_secret, peer_public_key))

    def encrypt(self, value: Any, random: Random = os.urandom) -> str:
        plaintext = json.dumps(value, separators=(",", ":")).encode("utf-8")
        nonce = random(crypto.GCM_IV_LENGTH)
        return base64.b64encode(nonce + crypto.aes_gcm_encrypt(self.key, nonce, plaintext)).decode(
            "ascii"
        )

    def decrypt(self, data: str) -> Any:
        try:
            blob = base64.b64decode(data, validate=True)
            if len(blob) < crypto.GCM_IV_LENGTH + crypto.GCM_TAG_LENGTH:
                raise QRDecryptionError("encrypted payload is too short")
            plaintext = crypto.aes_gcm_decrypt(
                self.key, blob[: crypto.GCM_IV_LENGTH], blob[crypto.GCM_IV_LENGTH :]
            )
            return json.loads(plaintext.decode("utf-8"))
        except (binascii.Error, ValueError, TypeError, CryptoError) as exc:
            raise QRDecryptionError("data can't be decrypted") from exc

    def encrypt_payload(self, value: dict[str, Any], random: Random = os.urandom) -> dict[str, str]:
        return {"encrypted": self.encrypt(value, random)}

    def decrypt_message(self, message: Message) -> dict[str, Any]:
        """The clear payload of an encrypted message, which must be a JSON object."""
        if message.message in CLEAR_MESSAGES:
            raise QRFrameError(f"{message.message} is not encrypted")
        encrypted = message.payload.get("encrypted")
        if not isinstance(encrypted, str):
            raise QRFrameError(f"{message.message} carries no encrypted payload")
        value = self.decrypt(encrypted)
        if not isinstance(value, dict):
            raise QRDecryptionError("decrypted payload is not a JSON object")
        return value


def random_digits(count: int = DIGITS_COUNT, random: Random = os.urandom) -> str:
    """The check code shown by the host: each digit is a random byte modulo 10."""
    return "".join(str(byte % 10) for byte in random(count))


def pairing_url(trustchain_api_base_url: str, host_public_key: bytes) -> str:
    """The QR code content: the API URL with its first ``http`` turned into ``ws``."""
    base = trustchain_api_base_url.rstrip("/").replace("http", "ws", 1)
    return f"{base}/v1/qr?host={host_public_key.hex()}"


def is_legacy_import(text: str) -> bool:
    """True for the base64 "export accounts" QR code of Ledger Live before Ledger Sync."""
    clean = re.sub(r"\s+", "", text.strip())
    if len(clean) < _LEGACY_IMPORT_MIN_LENGTH:
        return False
    if not _BASE64_CHARSET.match(clean) or not _BASE64_STRUCTURE.match(clean):
        return False
    try:
        decoded = base64.b64decode(clean, validate=True)
    except (binascii.Error, ValueError):
        return False
    return base64.b64encode(decoded).decode("ascii") == clean and decoded.startswith(
        _LEGACY_IMPORT_HEADER
    )


def parse_pairing_url(scanned: str) -> bytes:
    """The host's ephemeral public key named by a scanned QR code.

    Raises :class:`QRCodeError` (``legacy_import`` set for an old export QR code) when the
    text has no ``host=<hex>`` or the key is not a compressed secp256k1 point.
    """
    found = _HOST_PARAMETER.search(scanned)
    if found is None:
        if is_legacy_import(scanned):
            raise QRCodeError("this is a legacy account export QR code", legacy_import=True)
        raise QRCodeError("the QR code is not a Ledger Sync pairing URL")
    hex_key = found.group(1)
    if len(hex_key) % 2:
        raise QRCodeError("the QR code's host key is not whole bytes of hex")
    key = bytes.fromhex(hex_key)
    try:
        crypto.validate_public_key(key)
    except CryptoError as exc:
        raise QRCodeError(f"the QR code's host key is invalid: {exc}") from exc
    return key
