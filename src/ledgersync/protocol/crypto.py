"""Cryptographic primitives of the protocol: secp256k1, AES-256-GCM, BIP32.

See docs/protocol.md, "Cryptography".

Keys cross this module's boundary as bytes: 32-byte private keys, 33-byte compressed public
keys, 64-byte xprivs (private key ‖ chain code). Everything on the curve goes
through libsecp256k1 (coincurve), the same code Ledger's clients run.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import coincurve
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from .errors import CryptoError, SignatureError

#: The order of the secp256k1 group.
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_ORDER = CURVE_ORDER // 2
HARDENED = 0x80000000
XPRIV_LENGTH = 64
GCM_IV_LENGTH = 16
GCM_TAG_LENGTH = 16

Random = Callable[[int], bytes]
"""A source of random bytes; ``os.urandom`` unless a caller (a test) injects another."""


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


# --- keys -------------------------------------------------------------------------------------


def _private_key(secret: bytes) -> coincurve.PrivateKey:
    if len(secret) != 32:
        raise CryptoError(f"a private key is 32 bytes, got {len(secret)}")
    value = int.from_bytes(secret, "big")
    if not 0 < value < CURVE_ORDER:
        raise CryptoError("private key out of range for secp256k1")
    return coincurve.PrivateKey(secret)


def load_public_key(public_key: bytes) -> coincurve.PublicKey:
    """Parse a 33-byte compressed point, raising :class:`CryptoError` if it is not one."""
    if len(public_key) != 33 or public_key[0] not in (2, 3):
        raise CryptoError("a public key is a 33-byte compressed secp256k1 point (02/03 prefix)")
    return _parsed_public_key(bytes(public_key))


@functools.lru_cache(maxsize=4096)
def _parsed_public_key(public_key: bytes) -> coincurve.PublicKey:
    """A memo of a pure function, bounded: decompressing a point costs about as much as
    verifying a signature, and the same few keys come back (the server's own key in every
    challenge, a member's key in each of its logins and blocks). Parsed keys are never
    mutated here (``multiply`` and ``add`` return new keys); failures are not remembered."""
    try:
        return coincurve.PublicKey(public_key)
    except ValueError as exc:
        raise CryptoError("public key is not a point on secp256k1") from exc


def public_key_of(secret: bytes) -> bytes:
    """The compressed public key of a 32-byte private key."""
    return bytes(_private_key(secret).public_key.format(compressed=True))


def validate_public_key(public_key: bytes) -> None:
    load_public_key(public_key)


@dataclass(frozen=True)
class KeyPair:
    """A secp256k1 key pair; ``private_key`` is never shown by ``repr``.

    The parsed libsecp256k1 key is built once, with the pair: building it costs more than
    the signature it serves (a server signs every challenge with one pair)."""

    private_key: bytes = field(repr=False)
    public_key: bytes
    _signer: coincurve.PrivateKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_signer", _private_key(self.private_key))

    @classmethod
    def from_private_key(cls, secret: bytes) -> KeyPair:
        return cls(secret, public_key_of(secret))

    @classmethod
    def generate(cls, random: Random = os.urandom) -> KeyPair:
        while True:
            candidate = random(32)
            if 0 < int.from_bytes(candidate, "big") < CURVE_ORDER:
                return cls.from_private_key(candidate)

    def sign(self, digest: bytes) -> bytes:
        """DER ECDSA over a 32-byte digest, as :func:`sign_digest`."""
        return _sign_with(self._signer, digest)

    def ecdh(self, peer_public_key: bytes) -> bytes:
        return ecdh_x(self.private_key, peer_public_key)


def ecdh_x(secret: bytes, peer_public_key: bytes) -> bytes:
    """The raw 32-byte x-coordinate of secret·peer (no hash, no KDF)."""
    point = load_public_key(peer_public_key).multiply(bytes(_private_key(secret).secret))
    return bytes(point.format(compressed=True)[1:])


# --- ECDSA ------------------------------------------------------------------------------------


def sign_digest(secret: bytes, digest: bytes) -> bytes:
    """DER ECDSA over a 32-byte digest: RFC 6979 nonces, low-S (byte-identical to Ledger Live)."""
    return _sign_with(_private_key(secret), digest)


def _sign_with(key: coincurve.PrivateKey, digest: bytes) -> bytes:
    if len(digest) != 32:
        raise CryptoError(f"a digest is 32 bytes, got {len(digest)}")
    return bytes(key.sign(digest, hasher=None))


def parse_der_signature(signature: bytes) -> tuple[int, int]:
    """Read (r, s) from a DER signature as leniently as Ledger's clients.

    Non-minimal integers (a kept leading zero, a 31-byte component) are accepted; the
    structure itself (SEQUENCE of two INTEGERs, lengths consistent, no trailing byte) is not
    negotiable.
    """
    if len(signature) < 8 or signature[0] != 0x30 or signature[1] != len(signature) - 2:
        raise SignatureError("signature is not a DER SEQUENCE of the announced length")
    values = []
    pos = 2
    for name in ("r", "s"):
        if pos + 2 > len(signature) or signature[pos] != 0x02:
            raise SignatureError(f"signature: {name} is not a DER INTEGER")
        length = signature[pos + 1]
        start = pos + 2
        end = start + length
        if length == 0 or length > 33 or end > len(signature):
            raise SignatureError(f"signature: {name} has an invalid length")
        values.append(int.from_bytes(signature[start:end], "big"))
        pos = end
    if pos != len(signature):
        raise SignatureError("signature: trailing bytes after s")
    r, s = values
    if not (0 < r < CURVE_ORDER and 0 < s < CURVE_ORDER):
        raise SignatureError("signature: r or s out of range")
    return r, s


def encode_der_signature(r: int, s: int) -> bytes:
    """Minimal DER: strip leading zero bytes, add one 0x00 when the top bit is set."""

    def integer(value: int) -> bytes:
        body = value.to_bytes(32, "big").lstrip(b"\x00") or b"\x00"
        if body[0] & 0x80:
            body = b"\x00" + body
        return bytes((0x02, len(body))) + body

    content = integer(r) + integer(s)
    return bytes((0x30, len(content))) + content


def is_low_s(signature: bytes) -> bool:
    return parse_der_signature(signature)[1] <= HALF_ORDER


def verify_signature(
    public_key: bytes | coincurve.PublicKey,
    digest: bytes,
    signature: bytes,
    *,
    allow_high_s: bool = False,
) -> None:
    """Verify a DER ECDSA signature over a 32-byte digest; raises :class:`SignatureError`.

    High-S signatures are rejected, as Ledger's clients do, unless ``allow_high_s`` (the
    device accepts them in challenges).
    """
    if len(digest) != 32:
        raise SignatureError(f"a digest is 32 bytes, got {len(digest)}")
    key = load_public_key(public_key) if isinstance(public_key, bytes) else public_key
    try:
        if not allow_high_s and key.verify(signature, digest, hasher=None):
            return
    except ValueError:
        pass  # not strict DER: go through the lenient reader below
    r, s = parse_der_signature(signature)
    if s > HALF_ORDER:
        if not allow_high_s:
            raise SignatureError("signature has a high S value")
        s = CURVE_ORDER - s
    canonical = cdata_to_der(deserialize_compact(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    if not key.verify(canonical, digest, hasher=None):
        raise SignatureError("signature does not verify")


# --- AES-256-GCM ------------------------------------------------------------------------------


def aes_gcm_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """AES-256-GCM with the 16-byte IV used as-is; returns ciphertext ‖ tag."""
    if len(key) != 32:
        raise CryptoError(f"an AES-256 key is 32 bytes, got {len(key)}")
    if len(iv) != GCM_IV_LENGTH:
        raise CryptoError(f"the IV is 16 bytes, got {len(iv)}")
    # Imported on first use: verifying a trustchain (``ledgersync inspect``) needs no AES, and
    # loading the cryptography package is a noticeable part of that command's start-up.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).encrypt(iv, plaintext, None)


def aes_gcm_decrypt(key: bytes, iv: bytes, ciphertext_and_tag: bytes) -> bytes:
    if len(key) != 32:
        raise CryptoError(f"an AES-256 key is 32 bytes, got {len(key)}")
    if len(iv) != GCM_IV_LENGTH:
        raise CryptoError(f"the IV is 16 bytes, got {len(iv)}")
    if len(ciphertext_and_tag) < GCM_TAG_LENGTH:
        raise CryptoError("ciphertext is shorter than its authentication tag")
    from cryptography.exceptions import InvalidTag  # on first use, as above
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(iv, ciphertext_and_tag, None)
    except InvalidTag as exc:
        raise CryptoError("decryption failed: wrong key or tampered ciphertext") from exc


# --- BIP32 ------------------------------------------------------------------------------------


def master_xpriv_from_seed(seed: bytes) -> bytes:
    """BIP32 master key (private key ‖ chain code) from a BIP39 seed."""
    digest = hmac.digest(b"Bitcoin seed", seed, "sha512")
    key = int.from_bytes(digest[:32], "big")
    if not 0 < key < CURVE_ORDER:
        raise CryptoError("seed yields an invalid BIP32 master key")
    return digest


def derive_child(xpriv: bytes, index: int) -> bytes:
    """BIP32 CKDpriv for one index (hardened when ``index >= 2**31``)."""
    if len(xpriv) != XPRIV_LENGTH:
        raise CryptoError(f"an xpriv is 64 bytes (private key ‖ chain code), got {len(xpriv)}")
    if not 0 <= index < 1 << 32:
        raise CryptoError(f"derivation index {index} out of range")
    secret, chain_code = xpriv[:32], xpriv[32:]
    parent = int.from_bytes(secret, "big")
    if index >= HARDENED:
        data = b"\x00" + secret + index.to_bytes(4, "big")
    else:
        data = public_key_of(secret) + index.to_bytes(4, "big")
    digest = hmac.digest(chain_code, data, "sha512")
    tweak = int.from_bytes(digest[:32], "big")
    child = (tweak + parent) % CURVE_ORDER
    if tweak >= CURVE_ORDER or child == 0:
        raise CryptoError(f"index {index} yields an invalid key; use the next index")
    return child.to_bytes(32, "big") + digest[32:]


def derive_path(xpriv: bytes, path: Sequence[int]) -> bytes:
    for index in path:
        xpriv = derive_child(xpriv, index)
    return xpriv
