"""Instances on disk: one directory per app install, written so that nothing is ever half-done.

Layout (``home`` is ``$LEDGERSYNC_HOME`` or ``~/.config/ledgersync``, shared with the device
profiles of ``home/devices/``)::

    home/instances/NAME/            0700
        instance.json               0600: everything below, replaced atomically
        lock                        0600: held (flock) by the process working on the instance

``instance.json``::

    {"format": 1, "name": "laptop", "server": "http://localhost:8080",
     "memberName": "laptop", "created": "2026-12-01T21:00:00Z",
     "credentials": {"pubkey", "privatekey"} | null,                  # this member's key pair
     "trustchain": {"rootId", "walletSyncEncryptionKey", "applicationPath"} | null,
     "sync": {"base": <last synced remote document> | null, "version": 3,
              "local": <this instance's document>, "lastSync": "…Z" | null},
     "purged": {"reason", "message", "at"} | null}

Everything lives in one file so that the trustchain, the merge base, its version and the local
data always change together: a crash leaves the previous state or the next, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..device.privatefiles import make_private_directory, write_private_file
from ..sdk import MemberCredentials, Trustchain
from ..sdk.errors import InvalidArgument
from ..sdk.http import check_base_url
from .document import Document
from .errors import (
    InstanceBusy,
    InstanceCorrupted,
    InstanceError,
    InstanceExists,
    InstanceNotFound,
    NoInstanceSelected,
)

INSTANCE_FORMAT = 1
INSTANCE_ENV = "LEDGERSYNC_INSTANCE"
DEFAULT_LOCK_TIMEOUT = 10.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_instance_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InstanceError(
            f"invalid instance name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_server_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, as the SDK takes it (not
    ending in the ``/v1`` the SDK adds: :func:`ledgersync.sdk.http.check_base_url`)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InstanceError(f"{url!r} is not a server URL; give one like http://localhost:8080")
    if parts.query or parts.fragment:
        raise InstanceError(f"the server URL {url!r} must not have a query or fragment")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise InstanceError(f"the server URL {url!r} has a bad port") from exc
    try:
        return check_base_url(url, "server URL")
    except InvalidArgument as exc:
        raise InstanceError(str(exc)) from None


@dataclass(frozen=True)
class Purge:
    """Why an instance lost its trustchain: ``removed``, ``deleted`` or ``deactivated``."""

    reason: str
    message: str
    at: str


@dataclass(frozen=True)
class InstanceRecord:
    name: str
    server: str
    member_name: str
    created: str
    credentials: MemberCredentials | None = field(default=None, repr=False)
    trustchain: Trustchain | None = field(default=None, repr=False)
    base: Document | None = field(default=None, repr=False)
    version: int = 0
    local: Document = field(default_factory=dict, repr=False)
    last_sync: str | None = None
    purged: Purge | None = None

    @property
    def active(self) -> bool:
        return self.trustchain is not None and self.credentials is not None

    def purge(self, reason: str, message: str) -> InstanceRecord:
        """The record with every secret and all synced data gone."""
        return InstanceRecord(
            self.name,
            self.server,
            self.member_name,
            self.created,
            purged=Purge(reason, message, utc_now()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": INSTANCE_FORMAT,
            "name": self.name,
            "server": self.server,
            "memberName": self.member_name,
            "created": self.created,
            "credentials": self.credentials.to_json() if self.credentials else None,
            "trustchain": self.trustchain.to_json() if self.trustchain else None,
            "sync": {
                "base": self.base,
                "version": self.version,
                "local": self.local,
                "lastSync": self.last_sync,
            },
            "purged": (
                {"reason": self.purged.reason, "message": self.purged.message, "at": self.purged.at}
                if self.purged
                else None
            ),
        }

    @classmethod
    def from_json(cls, data: Any, where: Path) -> InstanceRecord:
        def fail(reason: str) -> InstanceCorrupted:
            return InstanceCorrupted(
                f"instance file {where} is damaged ({reason}); it was left untouched"
            )

        if not isinstance(data, dict) or data.get("format") != INSTANCE_FORMAT:
            raise fail(f"expected a format {INSTANCE_FORMAT} object")
        texts = [data.get(key) for key in ("name", "server", "memberName", "created")]
        if not all(isinstance(text, str) for text in texts):
            raise fail("name, server, memberName and created must be strings")
        sync = data.get("sync") or {}
        purged = data.get("purged")
        try:
            credentials = data.get("credentials")
            trustchain = data.get("trustchain")
            version = sync.get("version", 0)
            if not isinstance(version, int) or isinstance(version, bool) or version < 0:
                raise fail("the document version must be a non-negative integer")
            base, local = sync.get("base"), sync.get("local", {})
            if not (base is None or isinstance(base, dict)) or not isinstance(local, dict):
                raise fail("the synced documents must be JSON objects")
            return cls(
                name=texts[0],  # type: ignore[arg-type]
                server=texts[1],  # type: ignore[arg-type]
                member_name=texts[2],  # type: ignore[arg-type]
                created=texts[3],  # type: ignore[arg-type]
                credentials=MemberCredentials.from_json(credentials) if credentials else None,
                trustchain=Trustchain.from_json(trustchain) if trustchain else None,
                base=base,
                version=version,
                local=local,
                last_sync=sync.get("lastSync"),
                purged=Purge(purged["reason"], purged["message"], purged["at"])
                if isinstance(purged, dict)
                else None,
            )
        except (InvalidArgument, KeyError, TypeError, AttributeError) as exc:
            raise fail(str(exc)) from exc


class InstanceStore:
    """The instances under ``home/instances``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.directory = home / "instances"

    def path_for(self, name: str) -> Path:
        return self.directory / check_instance_name(name)

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            path.name
            for path in self.directory.iterdir()
            if _NAME.fullmatch(path.name) and (path / "instance.json").is_file()
        )

    def select(self, name: str | None) -> str:
        """``name``, else the only instance; a clear error otherwise."""
        names = self.names()
        if name:
            if name not in names:
                listed = f" (instances: {', '.join(names)})" if names else ""
                raise InstanceNotFound(
                    f"no instance named {name!r} in {self.directory}{listed}; "
                    "create it with `ledgersync instance new`"
                )
            return name
        if len(names) == 1:
            return names[0]
        if not names:
            raise NoInstanceSelected(
                "there is no instance yet: create one with "
                "`ledgersync instance new NAME --server URL`",
                names,
            )
        raise NoInstanceSelected(
            f"several instances exist ({', '.join(names)}): choose one with --instance NAME "
            f"or ${INSTANCE_ENV}",
            names,
        )

    def create(self, name: str, server: str, member_name: str | None = None) -> InstanceRecord:
        directory = self.path_for(name)
        server = check_server_url(server)
        member_name = (member_name if member_name is not None else name).strip()
        if not member_name or len(member_name.encode()) > 255:
            raise InstanceError("the member name must be 1 to 255 bytes of text")
        make_private_directory(self.directory)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError as exc:
            if (directory / "instance.json").exists():
                raise InstanceExists(f"an instance named {name!r} already exists") from exc
        record = InstanceRecord(name, server, member_name, utc_now())
        with self.locked(name) as instance:
            instance.save(record)
        return record

    def load(self, name: str) -> InstanceRecord:
        path = self.path_for(name) / "instance.json"
        try:
            text = path.read_bytes()
        except FileNotFoundError as exc:
            raise InstanceNotFound(f"no instance named {name!r} in {self.directory}") from exc
        except OSError as exc:
            raise InstanceCorrupted(f"cannot read {path}: {exc}") from exc
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InstanceCorrupted(
                f"instance file {path} is not JSON ({exc}); it was left untouched"
            ) from exc
        record = InstanceRecord.from_json(data, path)
        if record.name != name:
            raise InstanceCorrupted(f"instance file {path} names itself {record.name!r}")
        return record

    def remove(self, name: str) -> None:
        """Delete the instance's directory (local only)."""
        directory = self.path_for(name)
        with self.locked(name):
            shutil.rmtree(directory)

    # --- locking ----------------------------------------------------------------------------

    def _open_lock(self, name: str) -> int:
        directory = self.path_for(name)
        if not directory.is_dir():
            raise InstanceNotFound(f"no instance named {name!r} in {self.directory}")
        return os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)

    def _busy(self, name: str, descriptor: int, timeout: float) -> InstanceBusy:
        holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
        who = f" (process {holder})" if holder.isdigit() else ""
        return InstanceBusy(
            f"instance {name!r} is busy: another ledgersync process{who} is using it; "
            f"waited {timeout:g} s; try again when it is done"
        )

    @staticmethod
    def _try_lock(descriptor: int) -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode(), 0)
        return True

    def _attempts(self, name: str, descriptor: int, timeout: float) -> Iterator[float]:
        """Delays to wait between tries until the lock is ours (or :class:`InstanceBusy`)."""
        deadline = time.monotonic() + timeout
        while not self._try_lock(descriptor):
            if time.monotonic() >= deadline:
                raise self._busy(name, descriptor, timeout)
            yield 0.02

    @contextlib.contextmanager
    def locked(self, name: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[LockedInstance]:
        """Hold the instance's lock (waiting up to ``timeout`` seconds for another process)."""
        descriptor = self._open_lock(name)
        try:
            for delay in self._attempts(name, descriptor, timeout):
                time.sleep(delay)
            yield LockedInstance(self, name)
        finally:
            os.close(descriptor)  # releases the lock

    @contextlib.asynccontextmanager
    async def alocked(
        self, name: str, timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> AsyncIterator[LockedInstance]:
        """:meth:`locked` for coroutines: waiting does not block the event loop."""
        descriptor = self._open_lock(name)
        try:
            for delay in self._attempts(name, descriptor, timeout):
                await asyncio.sleep(delay)
            yield LockedInstance(self, name)
        finally:
            os.close(descriptor)

    def stamp(self, name: str) -> tuple[int, int]:
        """Changes whenever the instance file is replaced (to notice other processes' edits)."""
        try:
            info = (self.path_for(name) / "instance.json").stat()
        except FileNotFoundError:
            return (0, 0)
        return (info.st_mtime_ns, info.st_ino)


@dataclass
class LockedInstance:
    """An instance whose lock this process holds: read and replace its record."""

    store: InstanceStore
    name: str

    def read(self) -> InstanceRecord:
        return self.store.load(self.name)

    def save(self, record: InstanceRecord) -> None:
        text = json.dumps(record.to_json(), indent=1, ensure_ascii=False) + "\n"
        write_private_file(self.store.path_for(self.name) / "instance.json", text.encode())


__all__ = [
    "INSTANCE_ENV",
    "InstanceRecord",
    "InstanceStore",
    "LockedInstance",
    "Purge",
    "check_instance_name",
    "check_server_url",
]
