"""Seed-ID authentication: the challenge, the device response, member attestations.

See docs/protocol.md, "Challenge and attestation".

The backend issues a challenge TLV signed by its relying-party (rp) key; the device (or a
software member) signs the challenge hash; the backend checks that signature and the
attestation that says who signed: a Ledger Sync app (type 0x00) or a trustchain member
(type 0x02, carrying the trustchain id as ASCII).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from . import crypto, wire
from .crypto import Random
from .errors import ChallengeError, CryptoError, SignatureError

PAYLOAD_TYPE_SEED_ID_CHALLENGE = 0x07
SIGN_ALGORITHM_ECDSA_SHA256 = 0x01
CURVE_SECP256K1 = 0x21
CHALLENGE_DATA_LENGTH = 16
MAX_HOST_LENGTH = 63
MAX_RP_SIGNATURE_LENGTH = 75
PROTOCOL_VERSION = (1, 0, 0)

ATTESTATION_APPLICATION = 0x00
ATTESTATION_DEVICE = 0x01
ATTESTATION_TRUSTCHAIN = 0x02

TAG_PAYLOAD_TYPE = 0x01
TAG_VERSION = 0x02
TAG_CHALLENGE = 0x12
TAG_SIGNER_ALGORITHM = 0x14
TAG_DER_SIGNATURE = 0x15
TAG_VALID_UNTIL = 0x16
TAG_TRUSTED_NAME = 0x20
TAG_PUBLIC_KEY_CURVE = 0x32
TAG_PUBLIC_KEY = 0x33
TAG_PROTOCOL_VERSION = 0x60

#: The order the device demands (docs/protocol.md, "Challenge TLV").
FIELD_ORDER = (
    TAG_PAYLOAD_TYPE,
    TAG_VERSION,
    TAG_CHALLENGE,
    TAG_SIGNER_ALGORITHM,
    TAG_DER_SIGNATURE,
    TAG_VALID_UNTIL,
    TAG_TRUSTED_NAME,
    TAG_PUBLIC_KEY_CURVE,
    TAG_PUBLIC_KEY,
    TAG_PROTOCOL_VERSION,
)
#: The fields covered by the challenge hash, in this order.
SIGNED_FIELDS = (
    TAG_PAYLOAD_TYPE,
    TAG_VERSION,
    TAG_CHALLENGE,
    TAG_VALID_UNTIL,
    TAG_TRUSTED_NAME,
    TAG_PROTOCOL_VERSION,
)


class ChallengeFormatError(ChallengeError):
    """Truncated data, trailing data or a field out of order (device SW 0xB00D)."""


class ChallengeValueError(ChallengeError):
    """A field with a wrong tag, length or value (device SW 0xB00E)."""


class ChallengeSignatureError(ChallengeError):
    """A signature over the challenge that does not verify (device SW 0xB00F)."""


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag, len(value))) + value


def format_expiry(expiry: int) -> str:
    return wire.format_time(expiry)


def parse_expiry(text: str) -> int:
    try:
        return wire.parse_time(text)
    except (TypeError, ValueError) as exc:
        raise ChallengeValueError(f"challenge expiry {text!r} is not an ISO 8601 time") from exc


@dataclass(frozen=True, slots=True)
class Challenge:
    data: bytes
    expiry: int
    host: str
    rp_public_key: bytes
    rp_signature: bytes = b""
    payload_type: int = PAYLOAD_TYPE_SEED_ID_CHALLENGE
    version: int = 0
    signer_algorithm: int = SIGN_ALGORITHM_ECDSA_SHA256
    rp_curve: int = CURVE_SECP256K1
    protocol_version: tuple[int, int, int] = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if len(self.data) != CHALLENGE_DATA_LENGTH:
            raise ChallengeValueError("challenge data is 16 bytes")
        if not 0 <= self.expiry < 1 << 32:
            raise ChallengeValueError("challenge expiry is a 32-bit Unix time")
        if not self.host.isascii() or not 0 < len(self.host) <= MAX_HOST_LENGTH:
            raise ChallengeValueError("challenge host is 1 to 63 ASCII characters")
        if len(self.rp_public_key) != 33:
            raise ChallengeValueError("the rp public key is 33 bytes")
        if len(self.rp_signature) > MAX_RP_SIGNATURE_LENGTH:
            raise ChallengeValueError("the rp signature is at most 75 bytes")
        if not all(0 <= part <= 0xFF for part in self.protocol_version):
            raise ChallengeValueError("protocol version parts are bytes")
        one_byte = (self.payload_type, self.version, self.signer_algorithm, self.rp_curve)
        if not all(0 <= value <= 0xFF for value in one_byte):
            raise ChallengeValueError("payload type, version, algorithm and curve are bytes")

    def _fields(self) -> dict[int, bytes]:
        major, minor, patch = self.protocol_version
        return {
            TAG_PAYLOAD_TYPE: bytes((self.payload_type,)),
            TAG_VERSION: bytes((self.version,)),
            TAG_CHALLENGE: self.data,
            TAG_SIGNER_ALGORITHM: bytes((self.signer_algorithm,)),
            TAG_DER_SIGNATURE: self.rp_signature,
            TAG_VALID_UNTIL: self.expiry.to_bytes(4, "big"),
            TAG_TRUSTED_NAME: self.host.encode("ascii"),
            TAG_PUBLIC_KEY_CURVE: bytes((self.rp_curve,)),
            TAG_PUBLIC_KEY: self.rp_public_key,
            TAG_PROTOCOL_VERSION: bytes((major, minor, patch, 0)),
        }

    def encode(self) -> bytes:
        """The full TLV in the device's field order."""
        fields = self._fields()
        return b"".join(_tlv(tag, fields[tag]) for tag in FIELD_ORDER)

    def unsigned_tlv(self) -> bytes:
        fields = self._fields()
        return b"".join(_tlv(tag, fields[tag]) for tag in SIGNED_FIELDS)

    def hash(self) -> bytes:
        """SHA-256 of the signed fields: what the rp, the device and members sign."""
        return crypto.sha256(self.unsigned_tlv())

    def verify_rp_signature(self, *, allow_high_s: bool = True) -> None:
        """High-S is accepted by default: the device accepts it and Ledger's backend emits it."""
        try:
            crypto.verify_signature(
                self.rp_public_key, self.hash(), self.rp_signature, allow_high_s=allow_high_s
            )
        except (SignatureError, CryptoError) as exc:
            raise ChallengeSignatureError(f"the rp signature does not verify: {exc}") from exc

    @classmethod
    def decode(cls, data: bytes) -> Challenge:
        """Parse a challenge TLV as strictly as the device: exact order, lengths and values."""
        values: dict[int, bytes] = {}
        pos = 0
        for tag in FIELD_ORDER:
            if pos + 2 > len(data):
                raise ChallengeFormatError("challenge is truncated")
            if data[pos] != tag:
                raise ChallengeValueError(
                    f"challenge field 0x{data[pos]:02x} where 0x{tag:02x} was expected"
                )
            length = data[pos + 1]
            if pos + 2 + length > len(data):
                raise ChallengeFormatError("challenge is truncated")
            values[tag] = data[pos + 2 : pos + 2 + length]
            pos += 2 + length
        if pos != len(data):
            raise ChallengeFormatError(f"{len(data) - pos} trailing bytes after the challenge")
        for tag, length in (
            (TAG_PAYLOAD_TYPE, 1),
            (TAG_VERSION, 1),
            (TAG_CHALLENGE, CHALLENGE_DATA_LENGTH),
            (TAG_SIGNER_ALGORITHM, 1),
            (TAG_VALID_UNTIL, 4),
            (TAG_PUBLIC_KEY_CURVE, 1),
            (TAG_PUBLIC_KEY, 33),
            (TAG_PROTOCOL_VERSION, 4),
        ):
            if len(values[tag]) != length:
                raise ChallengeValueError(f"challenge field 0x{tag:02x} must be {length} bytes")
        if values[TAG_PAYLOAD_TYPE][0] != PAYLOAD_TYPE_SEED_ID_CHALLENGE:
            raise ChallengeValueError("challenge payload type must be 7 (seed-id challenge)")
        if values[TAG_VERSION][0] != 0:
            raise ChallengeValueError("challenge version must be 0")
        if values[TAG_SIGNER_ALGORITHM][0] != SIGN_ALGORITHM_ECDSA_SHA256:
            raise ChallengeValueError("challenge signer algorithm must be 1 (ECDSA-SHA256)")
        if values[TAG_PUBLIC_KEY_CURVE][0] != CURVE_SECP256K1:
            raise ChallengeValueError("challenge curve must be 0x21 (secp256k1)")
        host = values[TAG_TRUSTED_NAME]
        if not 0 < len(host) <= MAX_HOST_LENGTH or not host.isascii():
            raise ChallengeValueError("challenge host must be 1 to 63 ASCII bytes")
        if len(values[TAG_DER_SIGNATURE]) > MAX_RP_SIGNATURE_LENGTH:
            raise ChallengeValueError("challenge rp signature is longer than 75 bytes")
        major, minor, patch, _ = values[TAG_PROTOCOL_VERSION]
        return cls(
            data=values[TAG_CHALLENGE],
            expiry=int.from_bytes(values[TAG_VALID_UNTIL], "big"),
            host=host.decode("ascii"),
            rp_public_key=values[TAG_PUBLIC_KEY],
            rp_signature=values[TAG_DER_SIGNATURE],
            protocol_version=(major, minor, patch),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``json`` object of ``GET /v1/challenge`` (clients post it back verbatim)."""
        major, minor, patch = self.protocol_version
        return {
            "version": self.version,
            "challenge": {"data": self.data.hex(), "expiry": format_expiry(self.expiry)},
            "host": self.host,
            "rp": [
                {
                    "credential": PubKeyCredential(self.rp_public_key).to_json(),
                    "signature": self.rp_signature.hex(),
                }
            ],
            "protocolVersion": {"major": major, "minor": minor, "patch": patch},
        }

    @classmethod
    def from_json(cls, value: Any) -> Challenge:
        body = _field(value, "challenge", "challenge JSON")
        rps = _field(value, "rp", "challenge JSON")
        if not isinstance(rps, list) or not rps:
            raise ChallengeValueError("challenge rp must be a non-empty list")
        version = _field(value, "protocolVersion", "challenge JSON")
        return cls(
            data=_hex(_field(body, "data", "challenge.challenge"), "challenge.data"),
            expiry=parse_expiry(_field(body, "expiry", "challenge.challenge")),
            host=_str(_field(value, "host", "challenge JSON"), "host"),
            rp_public_key=PubKeyCredential.from_json(
                _field(rps[0], "credential", "challenge rp")
            ).public_key,
            rp_signature=_hex(_field(rps[0], "signature", "challenge rp"), "rp signature"),
            payload_type=_int(
                value.get("payloadType", PAYLOAD_TYPE_SEED_ID_CHALLENGE), "payloadType"
            ),
            version=_int(value.get("version", 0), "version"),
            protocol_version=(
                _int(_field(version, "major", "protocolVersion"), "major"),
                _int(_field(version, "minor", "protocolVersion"), "minor"),
                _int(_field(version, "patch", "protocolVersion"), "patch"),
            ),
        )


def build_challenge(
    relying_party: crypto.KeyPair, host: str, expiry: int, random: Random = os.urandom
) -> Challenge:
    """A fresh challenge signed by the relying party's key."""
    unsigned = Challenge(
        data=random(CHALLENGE_DATA_LENGTH),
        expiry=expiry,
        host=host,
        rp_public_key=relying_party.public_key,
    )
    return replace(unsigned, rp_signature=relying_party.sign(unsigned.hash()))


def _field(container: Any, key: str, what: str) -> Any:
    """``container[key]``, or an error naming the object that is not one or lacks the key."""
    if not isinstance(container, dict):
        raise ChallengeValueError(f"{what} must be a JSON object")
    if key not in container:
        raise ChallengeValueError(f"{what} has no {key!r} field")
    return container[key]


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ChallengeValueError(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise ChallengeValueError(f"{what} is not valid hex") from exc


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ChallengeValueError(f"{what} must be a string")
    return value


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ChallengeValueError(f"{what} must be an integer")
    return value


@dataclass(frozen=True, slots=True)
class PubKeyCredential:
    """``version ‖ curveId ‖ signAlgorithm ‖ len ‖ public key``, or its JSON twin."""

    public_key: bytes
    version: int = 0
    curve_id: int = CURVE_SECP256K1
    sign_algorithm: int = SIGN_ALGORITHM_ECDSA_SHA256

    def encode(self) -> bytes:
        return (
            bytes((self.version, self.curve_id, self.sign_algorithm, len(self.public_key)))
            + self.public_key
        )

    @classmethod
    def decode_from(cls, data: bytes, pos: int) -> tuple[PubKeyCredential, int]:
        if pos + 4 > len(data):
            raise ChallengeFormatError("credential is truncated")
        version, curve, algorithm, length = data[pos : pos + 4]
        end = pos + 4 + length
        if end > len(data):
            raise ChallengeFormatError("credential is truncated")
        credential = cls(data[pos + 4 : end], version, curve, algorithm)
        credential.check()
        return credential, end

    def check(self) -> None:
        if self.version != 0 or self.curve_id != CURVE_SECP256K1:
            raise ChallengeValueError("credential must be version 0 on curve 33 (secp256k1)")
        if self.sign_algorithm != SIGN_ALGORITHM_ECDSA_SHA256:
            raise ChallengeValueError("credential sign algorithm must be 1 (ECDSA-SHA256)")
        try:
            crypto.validate_public_key(self.public_key)
        except CryptoError as exc:
            raise ChallengeValueError(f"credential public key: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "curveId": self.curve_id,
            "signAlgorithm": self.sign_algorithm,
            "publicKey": self.public_key.hex(),
        }

    @classmethod
    def from_json(cls, value: Any) -> PubKeyCredential:
        credential = cls(
            public_key=_hex(_field(value, "publicKey", "credential"), "credential.publicKey"),
            version=_int(_field(value, "version", "credential"), "credential.version"),
            curve_id=_int(_field(value, "curveId", "credential"), "credential.curveId"),
            sign_algorithm=_int(
                _field(value, "signAlgorithm", "credential"), "credential.signAlgorithm"
            ),
        )
        credential.check()
        return credential


@dataclass(frozen=True, slots=True)
class DeviceAttestation:
    """Type 0x00: the Ledger Sync app's attestation key vouching for the seed-id signature."""

    credential: PubKeyCredential
    signature: bytes
    attestation_type: int = ATTESTATION_APPLICATION

    def encode(self) -> bytes:
        return (
            bytes((self.attestation_type,))
            + self.credential.encode()
            + bytes((len(self.signature),))
            + self.signature
        )

    def verify(self, challenge_hash: bytes, seed_id_signature: bytes) -> None:
        digest = crypto.sha256(challenge_hash + seed_id_signature)
        try:
            crypto.verify_signature(self.credential.public_key, digest, self.signature)
        except (SignatureError, CryptoError) as exc:
            raise ChallengeSignatureError(f"the attestation does not verify: {exc}") from exc


@dataclass(frozen=True, slots=True)
class MemberAttestation:
    """Type 0x02: a software member naming the trustchain it wants to enter."""

    trustchain_id: str

    def encode(self) -> bytes:
        raw = self.trustchain_id.encode("ascii")
        if len(raw) > 255:
            raise ChallengeValueError("trustchain id is too long")
        return bytes((ATTESTATION_TRUSTCHAIN, len(raw))) + raw


Attestation = DeviceAttestation | MemberAttestation


def decode_attestation(data: bytes) -> Attestation:
    if not data:
        raise ChallengeFormatError("attestation is empty")
    kind = data[0]
    if kind == ATTESTATION_TRUSTCHAIN:
        if len(data) < 2 or data[1] != len(data) - 2:
            raise ChallengeFormatError("member attestation length does not match")
        try:
            return MemberAttestation(data[2:].decode("ascii"))
        except UnicodeDecodeError as exc:
            raise ChallengeValueError("member attestation is not an ASCII trustchain id") from exc
    if kind in (ATTESTATION_APPLICATION, ATTESTATION_DEVICE):
        credential, pos = PubKeyCredential.decode_from(data, 1)
        if pos >= len(data):
            raise ChallengeFormatError("attestation signature is missing")
        length = data[pos]
        if pos + 1 + length != len(data):
            raise ChallengeFormatError("attestation signature length does not match")
        return DeviceAttestation(credential, data[pos + 1 :], kind)
    raise ChallengeValueError(f"unknown attestation type 0x{kind:02x}")


@dataclass(frozen=True, slots=True)
class SeedIdResponse:
    """The device's GET_SEED_ID answer (docs/protocol.md, "Device answer")."""

    credential: PubKeyCredential
    signature: bytes
    attestation: DeviceAttestation

    def encode(self) -> bytes:
        return (
            self.credential.encode()
            + bytes((len(self.signature),))
            + self.signature
            + self.attestation.encode()
        )

    @classmethod
    def decode(cls, data: bytes) -> SeedIdResponse:
        credential, pos = PubKeyCredential.decode_from(data, 0)
        if pos >= len(data):
            raise ChallengeFormatError("seed-id signature is missing")
        end = pos + 1 + data[pos]
        if end > len(data):
            raise ChallengeFormatError("seed-id signature is truncated")
        attestation = decode_attestation(data[end:])
        if not isinstance(attestation, DeviceAttestation):
            raise ChallengeValueError("a device response carries a device attestation")
        return cls(credential, data[pos + 1 : end], attestation)

    def verify(self, challenge: Challenge) -> None:
        """Check the seed-id signature and the attestation over ``challenge``."""
        challenge_hash = challenge.hash()
        try:
            crypto.verify_signature(self.credential.public_key, challenge_hash, self.signature)
        except (SignatureError, CryptoError) as exc:
            raise ChallengeSignatureError(f"the seed-id signature does not verify: {exc}") from exc
        self.attestation.verify(challenge_hash, self.signature)


def sign_seed_id(
    challenge: Challenge, seed_id_secret: bytes, attestation_secret: bytes
) -> SeedIdResponse:
    """What the device answers once the user approves the login."""
    challenge_hash = challenge.hash()
    signature = crypto.sign_digest(seed_id_secret, challenge_hash)
    attestation = DeviceAttestation(
        PubKeyCredential(crypto.public_key_of(attestation_secret)),
        crypto.sign_digest(attestation_secret, crypto.sha256(challenge_hash + signature)),
    )
    return SeedIdResponse(
        PubKeyCredential(crypto.public_key_of(seed_id_secret)), signature, attestation
    )


@dataclass(frozen=True, slots=True)
class ChallengeAnswer:
    """The ``signature`` object posted to ``/v1/authenticate``, parsed.

    See docs/protocol.md, "Login body".

    The inverse of :func:`member_authentication` and :func:`device_authentication`; nothing is
    verified here (that needs the challenge hash and a trust policy).
    """

    credential: PubKeyCredential
    signature: bytes
    attestation: Attestation

    @classmethod
    def from_json(cls, value: Any) -> ChallengeAnswer:
        if not isinstance(value, dict):
            raise ChallengeValueError(
                "the answer must be an object with credential, signature and attestation"
            )
        return cls(
            credential=PubKeyCredential.from_json(value.get("credential")),
            signature=_hex(value.get("signature"), "signature"),
            attestation=decode_attestation(_hex(value.get("attestation"), "attestation")),
        )


def member_authentication(
    challenge: Challenge, member_secret: bytes, trustchain_id: str
) -> dict[str, Any]:
    """The ``signature`` object a software member posts to ``/v1/authenticate``."""
    return {
        "credential": PubKeyCredential(crypto.public_key_of(member_secret)).to_json(),
        "signature": crypto.sign_digest(member_secret, challenge.hash()).hex(),
        "attestation": MemberAttestation(trustchain_id).encode().hex(),
    }


def device_authentication(response: SeedIdResponse) -> dict[str, Any]:
    """The ``signature`` object a device login posts to ``/v1/authenticate``."""
    return {
        "credential": response.credential.to_json(),
        "signature": response.signature.hex(),
        "attestation": response.attestation.encode().hex(),
    }
