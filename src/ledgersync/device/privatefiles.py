"""Files that hold secrets (recovery phrases, member keys, wallet data).

Written atomically (a temporary file in the same directory, fsync, rename, then fsync of the
directory) with mode ``0600`` whatever the umask, so that a crash mid-write leaves either the
old file or the new one, never half of one, and no other user can read either.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path


def make_private_directory(directory: Path) -> None:
    """Create ``directory`` (and its parents) ``0700``; tighten it if it already exists."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)


def write_private_file(path: Path, content: bytes) -> None:
    """Replace ``path`` by ``content`` atomically, mode ``0600``."""
    temporary = _write_temporary(path, content)
    try:
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def create_private_file(path: Path, content: bytes) -> None:
    """Create ``path`` with ``content`` atomically, mode ``0600``; :class:`FileExistsError`
    if it exists, even when another process creates it meanwhile (the complete file is
    hard-linked into place, which never replaces anything)."""
    temporary = _write_temporary(path, content)
    try:
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise
        except OSError:
            # No hard links on this file system (some network or FUSE ones): check, rename.
            if path.exists():
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
            os.replace(temporary, path)
        _fsync_directory(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def delete_private_file(path: Path) -> None:
    """Remove ``path`` (:class:`FileNotFoundError` if absent), durably."""
    path.unlink()
    _fsync_directory(path.parent)


def _write_temporary(path: Path, content: bytes) -> Path:
    """``content`` in a ``0600`` file next to ``path``, on disk; removed if writing fails."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return temporary


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
