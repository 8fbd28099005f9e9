"""Software device profiles on disk: a name, a recovery phrase and its options.

Layout: ``<home>/devices/<name>.json``, where ``home`` is ``$LEDGERSYNC_HOME`` or
``~/.config/ledgersync``. The directory is created ``0700`` and each file is written
``0600`` (it holds the recovery phrase) through a temporary file, so that a crash never
leaves half a profile; a new profile never replaces an existing one. A profile file::

    {"format": 1, "name": "alice", "mnemonic": "…24 words…", "passphrase": "",
     "created": "2025-01-01T00:00:00Z"}

plus ``"attestation_private_key"`` (hex) when it is not the app's TEST key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import DeviceError
from .identity import (
    TEST_ATTESTATION_PRIVATE_KEY,
    DeviceIdentity,
    generate_mnemonic,
    normalize_mnemonic,
)
from .privatefiles import create_private_file, delete_private_file, make_private_directory

HOME_ENV = "LEDGERSYNC_HOME"
PROFILE_FORMAT = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def default_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$LEDGERSYNC_HOME`` if set, else ``~/.config/ledgersync``."""
    configured = environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".config" / "ledgersync"


class ProfileError(DeviceError):
    """A device profile that cannot be created, found or read."""


class ProfileNotFoundError(ProfileError):
    pass


class ProfileExistsError(ProfileError):
    pass


def check_profile_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ProfileError(
            f"invalid device name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    mnemonic: str = field(repr=False)
    passphrase: str = field(default="", repr=False)
    attestation_key: bytes = field(default=TEST_ATTESTATION_PRIVATE_KEY, repr=False)
    created: str = ""

    def identity(self) -> DeviceIdentity:
        return DeviceIdentity.from_mnemonic(self.mnemonic, self.passphrase, self.attestation_key)

    @property
    def uses_test_attestation(self) -> bool:
        return self.attestation_key == TEST_ATTESTATION_PRIVATE_KEY

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": PROFILE_FORMAT,
            "name": self.name,
            "mnemonic": self.mnemonic,
            "passphrase": self.passphrase,
            "created": self.created,
        }
        if not self.uses_test_attestation:
            data["attestation_private_key"] = self.attestation_key.hex()
        return data

    @classmethod
    def from_json(cls, data: Any, where: Path) -> DeviceProfile:
        def fail(reason: str) -> ProfileError:
            return ProfileError(f"device profile {where} is not valid: {reason}")

        if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
            raise fail(f"expected a format {PROFILE_FORMAT} object")
        fields = {key: data.get(key, "") for key in ("name", "mnemonic", "passphrase", "created")}
        if not all(isinstance(value, str) for value in fields.values()):
            raise fail("name, mnemonic, passphrase and created are strings")
        attestation = data.get("attestation_private_key", TEST_ATTESTATION_PRIVATE_KEY.hex())
        try:
            key = bytes.fromhex(attestation)
            mnemonic = normalize_mnemonic(fields["mnemonic"])
        except (TypeError, ValueError) as exc:  # InvalidMnemonicError is a ValueError
            raise fail(str(exc)) from exc
        if len(key) != 32:
            raise fail("the attestation key is 32 bytes")
        return cls(fields["name"], mnemonic, fields["passphrase"], key, fields["created"])


class ProfileStore:
    def __init__(self, home: Path) -> None:
        self.directory = home / "devices"

    def path_for(self, name: str) -> Path:
        return self.directory / f"{check_profile_name(name)}.json"

    def create(
        self,
        name: str,
        *,
        mnemonic: str | None = None,
        passphrase: str = "",
        attestation_key: bytes = TEST_ATTESTATION_PRIVATE_KEY,
    ) -> DeviceProfile:
        """A new profile: a fresh 24-word phrase, or ``mnemonic`` (an import)."""
        path = self.path_for(name)
        if path.exists():
            raise _exists(name, path)
        phrase = generate_mnemonic() if mnemonic is None else normalize_mnemonic(mnemonic)
        profile = DeviceProfile(
            name=name,
            mnemonic=phrase,
            passphrase=passphrase,
            attestation_key=attestation_key,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        profile.identity()  # fails now, not at first use, on a bad attestation key
        self._write_new(path, profile)
        return profile

    def _write_new(self, path: Path, profile: DeviceProfile) -> None:
        make_private_directory(self.directory)
        text = json.dumps(profile.to_json(), indent=2) + "\n"
        try:
            create_private_file(path, text.encode("utf-8"))
        except FileExistsError as exc:
            raise _exists(profile.name, path) from exc

    def delete(self, name: str) -> None:
        """Delete profile ``name``: its recovery phrase is gone for good (unless written down)."""
        path = self.path_for(name)
        try:
            delete_private_file(path)
        except FileNotFoundError as exc:
            raise self._not_found(name) from exc

    def rename(self, name: str, new_name: str) -> DeviceProfile:
        """Call profile ``name`` ``new_name``; the phrase, passphrase, attestation key and
        creation time stay. The profile is first written under its new name (``0600``,
        atomically, never over another profile), then the old file is removed: a crash in
        between leaves the profile under both names, never under neither."""
        target = self.path_for(new_name)
        renamed = replace(self.load(name), name=new_name)
        self._write_new(target, renamed)
        delete_private_file(self.path_for(name))
        return renamed

    def _not_found(self, name: str) -> ProfileNotFoundError:
        return ProfileNotFoundError(
            f"no device named {name!r} in {self.directory} "
            "(create one with `ledgersync device new`)"
        )

    def load(self, name: str) -> DeviceProfile:
        path = self.path_for(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise self._not_found(name) from exc
        except OSError as exc:
            raise ProfileError(f"cannot read device profile {path}: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"device profile {path} is not JSON: {exc}") from exc
        profile = DeviceProfile.from_json(data, path)
        if profile.name != name:
            raise ProfileError(f"device profile {path} names itself {profile.name!r}")
        return profile

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            path.stem
            for path in self.directory.glob("*.json")
            if _NAME.fullmatch(path.stem) is not None
        )


def _exists(name: str, path: Path) -> ProfileExistsError:
    return ProfileExistsError(f"a device named {name!r} already exists ({path})")
