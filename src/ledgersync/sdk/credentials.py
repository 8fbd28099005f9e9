"""What an instance persists: its member credentials and the trustchain it belongs to.

Both serialise to the JSON shapes Ledger Live stores (``{pubkey, privatekey}`` and
``{rootId, walletSyncEncryptionKey, applicationPath}``), so state can move between the two.
Secrets never appear in ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..protocol import crypto
from ..protocol.crypto import Random
from ..protocol.errors import CryptoError
from ..protocol.paths import format_path, parse_path
from ..protocol.permissions import OWNER
from .errors import InvalidArgument


def _hex_field(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not valid hex") from exc
    if length is not None and len(raw) != length:
        raise InvalidArgument(f"{what} must be {length} bytes, got {len(raw)}")
    return raw


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{what} must be a JSON object")
    return value


@dataclass(frozen=True)
class MemberCredentials:
    """This instance's member key pair (a random secp256k1 key, generated once and kept)."""

    private_key: bytes = field(repr=False)
    public_key: bytes

    def __post_init__(self) -> None:
        try:
            derived = crypto.public_key_of(self.private_key)
        except CryptoError as exc:
            raise InvalidArgument(f"member private key: {exc}") from exc
        if derived != self.public_key:
            raise InvalidArgument("member public key does not match the private key")

    @classmethod
    def generate(cls, random: Random = os.urandom) -> MemberCredentials:
        pair = crypto.KeyPair.generate(random)
        return cls(pair.private_key, pair.public_key)

    @classmethod
    def from_private_key(cls, private_key: bytes) -> MemberCredentials:
        try:
            return cls(private_key, crypto.public_key_of(private_key))
        except CryptoError as exc:
            raise InvalidArgument(f"member private key: {exc}") from exc

    @property
    def pubkey(self) -> str:
        """The member id: hex of the 33-byte compressed public key."""
        return self.public_key.hex()

    @property
    def key_pair(self) -> crypto.KeyPair:
        return crypto.KeyPair(self.private_key, self.public_key)

    def to_json(self) -> dict[str, str]:
        return {"pubkey": self.public_key.hex(), "privatekey": self.private_key.hex()}

    @classmethod
    def from_json(cls, value: Any) -> MemberCredentials:
        body = _mapping(value, "member credentials")
        return cls(
            _hex_field(body.get("privatekey"), "privatekey", 32),
            _hex_field(body.get("pubkey"), "pubkey", 33),
        )


@dataclass(frozen=True)
class Trustchain:
    """What a member knows of its trustchain: the id, the current application key and path."""

    root_id: str
    wallet_sync_encryption_key: bytes = field(repr=False)
    application_path: str

    def __post_init__(self) -> None:
        if not isinstance(self.root_id, str) or not self.root_id:
            raise InvalidArgument("trustchain root id must be a non-empty string")
        if len(self.wallet_sync_encryption_key) != 32:
            raise InvalidArgument("walletSyncEncryptionKey must be 32 bytes")
        try:
            path = parse_path(self.application_path)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        if format_path(path) != self.application_path:
            raise InvalidArgument(f"application path {self.application_path!r} is not canonical")

    def to_json(self) -> dict[str, str]:
        return {
            "rootId": self.root_id,
            "walletSyncEncryptionKey": self.wallet_sync_encryption_key.hex(),
            "applicationPath": self.application_path,
        }

    @classmethod
    def from_json(cls, value: Any) -> Trustchain:
        body = _mapping(value, "trustchain")
        root_id, path = body.get("rootId"), body.get("applicationPath")
        if not isinstance(root_id, str) or not isinstance(path, str):
            raise InvalidArgument("trustchain rootId and applicationPath must be strings")
        return cls(root_id, _hex_field(body.get("walletSyncEncryptionKey"), "key", 32), path)


@dataclass(frozen=True, slots=True)
class TrustchainMember:
    """A member of the application stream as the instances list shows it."""

    id: str
    name: str
    permissions: int = OWNER

    @property
    def public_key(self) -> bytes:
        return _hex_field(self.id, "member id", 33)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "permissions": self.permissions}

    @classmethod
    def from_json(cls, value: Any) -> TrustchainMember:
        body = _mapping(value, "member")
        member_id, name = body.get("id"), body.get("name")
        permissions = body.get("permissions", OWNER)
        if not isinstance(name, str) or not name:
            raise InvalidArgument("member name must be a non-empty string")
        if not isinstance(permissions, int) or isinstance(permissions, bool):
            raise InvalidArgument("member permissions must be an integer")
        member = cls(str(member_id), name, permissions)
        try:
            crypto.validate_public_key(member.public_key)
        except CryptoError as exc:
            raise InvalidArgument(f"member id: {exc}") from exc
        return member


class TrustchainResultType(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    RESTORED = "restored"


@dataclass(frozen=True, slots=True)
class TrustchainResult:
    type: TrustchainResultType
    trustchain: Trustchain
