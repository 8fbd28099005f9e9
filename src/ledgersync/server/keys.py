"""The server's own secrets, kept in one key file created on first start.

* the *relying-party key* (secp256k1) signs authentication challenges; clients and devices
  check that signature with the public key carried inside the challenge;
* the *token key* (P-256) signs the ES256 access tokens; every process serving the same
  deployment reads the same file, so any of them can verify any token.

The file is JSON, created with mode ``0600`` and never rewritten. Two processes starting at
once cannot both create it: the file is written under a temporary name and hard-linked into
place, which fails if it already exists; the loser reads the winner's file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..protocol.crypto import KeyPair

log = logging.getLogger(__name__)

KEY_FILE_VERSION = 1


class KeyFileError(RuntimeError):
    """The key file exists but cannot be used."""


@dataclass(frozen=True)
class ServerKeys:
    relying_party: KeyPair = field(repr=False)
    token_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> ServerKeys:
        return cls(KeyPair.generate(), ec.generate_private_key(ec.SECP256R1()))

    def to_json(self) -> str:
        pem = self.token_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return json.dumps(
            {
                "version": KEY_FILE_VERSION,
                "relying_party_private_key": self.relying_party.private_key.hex(),
                "token_private_key_pem": pem.decode("ascii"),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> ServerKeys:
        try:
            data = json.loads(text)
            if data.get("version") != KEY_FILE_VERSION:
                raise KeyFileError(f"unsupported key file version {data.get('version')!r}")
            relying_party = KeyPair.from_private_key(
                bytes.fromhex(data["relying_party_private_key"])
            )
            token_key = serialization.load_pem_private_key(
                data["token_private_key_pem"].encode("ascii"), password=None
            )
        except KeyFileError:
            raise
        except Exception as exc:  # any malformed content: say which file, never the secrets
            raise KeyFileError(f"the key file is malformed ({type(exc).__name__})") from exc
        if not isinstance(token_key, ec.EllipticCurvePrivateKey) or not isinstance(
            token_key.curve, ec.SECP256R1
        ):
            raise KeyFileError("the token key must be a P-256 private key")
        return cls(relying_party, token_key)


def load_or_create_keys(path: Path) -> ServerKeys:
    """Read the key file, creating it (and its directory) with fresh keys if it is absent."""
    if not path.exists():
        _create(path, ServerKeys.generate())
        log.info("created server key file", extra={"path": str(path)})
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "server key file is readable by other users; chmod 600 it",
            extra={"path": str(path)},
        )
    try:
        return ServerKeys.from_json(path.read_text(encoding="utf-8"))
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from exc


def _create(path: Path, keys: ServerKeys) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data folder: private
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(keys.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
