"""Files that hold secrets (recovery phrases, member keys, wallet data).

Written atomically (a temporary file in the same directory, fsync, rename, then fsync of the
directory) with mode ``0600`` whatever the umask, so that a crash mid-write leaves either the
old file or the new one, never half of one, and no other user can read either.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def make_private_directory(directory: Path) -> None:
    """Create ``directory`` (and its parents) ``0700``; tighten it if it already exists."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


def write_private_file(path: Path, content: bytes) -> None:
    """Replace ``path`` by ``content`` atomically, mode ``0600``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
