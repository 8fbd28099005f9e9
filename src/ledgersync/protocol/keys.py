"""Wrapping a stream's xpriv to a member: ECDH x-coordinate → AES-256-GCM.

See docs/protocol.md, "Key wrapping".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import crypto
from .crypto import Random
from .errors import CryptoError

ENCRYPTED_XPRIV_LENGTH = crypto.XPRIV_LENGTH + crypto.GCM_TAG_LENGTH
LEGACY_CBC_XPRIV_LENGTH = 64


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """The three fields a Seed, Derive or PublishKey carries for one key holder."""

    initialization_vector: bytes
    encrypted_xpriv: bytes
    ephemeral_public_key: bytes


def wrap_xpriv(xpriv: bytes, recipient: bytes, random: Random = os.urandom) -> WrappedKey:
    if len(xpriv) != crypto.XPRIV_LENGTH:
        raise CryptoError(f"an xpriv is 64 bytes, got {len(xpriv)}")
    ephemeral = crypto.KeyPair.generate(random)
    iv = random(crypto.GCM_IV_LENGTH)
    key = ephemeral.ecdh(recipient)
    return WrappedKey(iv, crypto.aes_gcm_encrypt(key, iv, xpriv), ephemeral.public_key)


def unwrap_xpriv(secret: bytes, wrapped: WrappedKey) -> bytes:
    """Decrypt a wrapped xpriv with the recipient's private key."""
    if len(wrapped.encrypted_xpriv) == LEGACY_CBC_XPRIV_LENGTH:
        raise CryptoError("this key was wrapped with the legacy AES-CBC scheme and cannot be read")
    if len(wrapped.encrypted_xpriv) != ENCRYPTED_XPRIV_LENGTH:
        raise CryptoError(
            f"an encrypted xpriv is {ENCRYPTED_XPRIV_LENGTH} bytes, "
            f"got {len(wrapped.encrypted_xpriv)}"
        )
    key = crypto.ecdh_x(secret, wrapped.ephemeral_public_key)
    return crypto.aes_gcm_decrypt(key, wrapped.initialization_vector, wrapped.encrypted_xpriv)


@dataclass(frozen=True, slots=True)
class StreamKey:
    """A decrypted stream key: 32-byte private key and 32-byte chain code."""

    xpriv: bytes = field(repr=False)

    @property
    def private_key(self) -> bytes:
        return self.xpriv[:32]

    @property
    def chain_code(self) -> bytes:
        return self.xpriv[32:]

    @property
    def public_key(self) -> bytes:
        return crypto.public_key_of(self.private_key)
