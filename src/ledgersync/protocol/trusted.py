"""Trusted properties (TPs) and the trusted-member blob of the device app.

See docs/protocol.md, "Session and trusted properties" and "Trusted-member blob".

A TP response is a TLV list that opens with ``00 10 <iv>``, a fresh IV for this response.
Tags with the 0x80 bit set are AES-256-GCM encrypted with the session key (the raw ECDH x
of the INIT key exchange) and **all of them reuse that one IV**; the
others travel in clear. SET_TRUSTED_MEMBER sends a blob back in the same format.

The trusted-member blob is the app's C struct behind a nonce and a checksum::

    nonce(4) ‖ key(33) ‖ pad(3) ‖ permissions(u32 LE) ‖ owns_key(1) ‖ pad(3) ‖ SHA-256[:4]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from . import crypto, tlv
from .errors import CryptoError, DecodeError, EncodeError
from .tlv import Reader


class TrustedProperty(IntEnum):
    IV = 0x00
    ISSUER = 0x81
    XPRIV = 0x82
    EPHEMERAL_PUBLIC_KEY = 0x03
    COMMAND_IV = 0x04
    GROUP_KEY = 0x05
    NEW_MEMBER = 0x86


ENCRYPTED_FLAG = 0x80


def is_encrypted(tag: int) -> bool:
    return bool(tag & ENCRYPTED_FLAG)


@dataclass(frozen=True, slots=True)
class TrustedProperties:
    """One response's TPs as they travel: encrypted values are still encrypted."""

    iv: bytes
    entries: tuple[tuple[int, bytes], ...]

    def __post_init__(self) -> None:
        if len(self.iv) != crypto.GCM_IV_LENGTH:
            raise EncodeError("the trusted-properties IV is 16 bytes")

    def encode(self) -> bytes:
        return tlv.encode_tlv(TrustedProperty.IV, self.iv) + b"".join(
            tlv.encode_tlv(tag, value) for tag, value in self.entries
        )

    @classmethod
    def decode(cls, data: bytes) -> TrustedProperties:
        """Parse a TP list; it must start with the 16-byte IV."""
        reader = Reader(data)
        tag, iv = reader.read_raw() if not reader.at_end() else (None, b"")
        if tag != TrustedProperty.IV or len(iv) != crypto.GCM_IV_LENGTH:
            raise DecodeError("trusted properties must start with a 16-byte IV (tag 0x00)")
        entries = []
        while not reader.at_end():
            entries.append(reader.read_raw())
        return cls(iv, tuple(entries))

    @classmethod
    def seal(
        cls, session_key: bytes, iv: bytes, values: Iterable[tuple[int, bytes]]
    ) -> TrustedProperties:
        """Build a response from clear values, encrypting every tag that has the 0x80 bit."""
        sealed = []
        for tag, value in values:
            if is_encrypted(tag):
                value = crypto.aes_gcm_encrypt(session_key, iv, value)
            sealed.append((tag, value))
        return cls(iv, tuple(sealed))

    def find(self, tag: int) -> bytes | None:
        for entry_tag, value in self.entries:
            if entry_tag == tag:
                return value
        return None

    def require(self, tag: TrustedProperty) -> bytes:
        value = self.find(tag)
        if value is None:
            raise DecodeError(f"the device response lacks the {tag.name} trusted property")
        return value

    def open(self, tag: TrustedProperty, session_key: bytes) -> bytes:
        """The clear value of ``tag``, decrypting it if it is an encrypted property."""
        value = self.require(tag)
        if not is_encrypted(tag):
            return value
        return crypto.aes_gcm_decrypt(session_key, self.iv, value)


# --- the trusted-member blob ------------------------------------------------------------------

MEMBER_NONCE_LENGTH = 4
MEMBER_CHECKSUM_LENGTH = 4
#: 33-byte key, 3 alignment bytes, u32 permissions, owns_key byte, 3 alignment bytes.
_MEMBER_STRUCT_LENGTH = 44
MEMBER_BLOB_LENGTH = MEMBER_NONCE_LENGTH + _MEMBER_STRUCT_LENGTH + MEMBER_CHECKSUM_LENGTH


@dataclass(frozen=True, slots=True)
class TrustedMember:
    """The device's single trusted-member slot: a key it will accept as a block issuer."""

    public_key: bytes
    permissions: int
    owns_key: bool

    def __post_init__(self) -> None:
        if len(self.public_key) != tlv.PUBLIC_KEY_LENGTH:
            raise EncodeError("a trusted member's key is 33 bytes")
        if not 0 <= self.permissions <= 0xFFFFFFFF:
            raise EncodeError("a trusted member's permissions are an unsigned 32-bit integer")


def encode_member_blob(member: TrustedMember, nonce: bytes) -> bytes:
    """The 52-byte plaintext the device encrypts as a NEW_MEMBER property."""
    if len(nonce) != MEMBER_NONCE_LENGTH:
        raise EncodeError("the trusted-member nonce is 4 bytes")
    body = (
        nonce
        + member.public_key
        + bytes(3)
        + member.permissions.to_bytes(4, "little")
        + bytes((int(member.owns_key),))
        + bytes(3)
    )
    return body + crypto.sha256(body)[:MEMBER_CHECKSUM_LENGTH]


def decode_member_blob(blob: bytes) -> TrustedMember:
    """Check a blob's length and checksum and read the member it names."""
    if len(blob) != MEMBER_BLOB_LENGTH:
        raise DecodeError(f"a trusted-member blob is {MEMBER_BLOB_LENGTH} bytes, got {len(blob)}")
    body, checksum = blob[:-MEMBER_CHECKSUM_LENGTH], blob[-MEMBER_CHECKSUM_LENGTH:]
    if crypto.sha256(body)[:MEMBER_CHECKSUM_LENGTH] != checksum:
        raise DecodeError("the trusted-member blob's checksum does not match")
    key_end = MEMBER_NONCE_LENGTH + tlv.PUBLIC_KEY_LENGTH
    permissions_at = key_end + 3
    return TrustedMember(
        public_key=bytes(body[MEMBER_NONCE_LENGTH:key_end]),
        permissions=int.from_bytes(body[permissions_at : permissions_at + 4], "little"),
        owns_key=bool(body[permissions_at + 4]),
    )


def open_member(properties: TrustedProperties, session_key: bytes) -> TrustedMember:
    """The member of a SET_TRUSTED_MEMBER payload; any failure is one DecodeError."""
    try:
        return decode_member_blob(properties.open(TrustedProperty.NEW_MEMBER, session_key))
    except CryptoError as exc:
        raise DecodeError("the trusted-member blob does not decrypt with this session") from exc
