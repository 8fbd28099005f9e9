"""Derivation paths: the textual ``m/0'/16'/0'`` form and the 4-byte big-endian wire form."""

from __future__ import annotations

from .errors import DecodeError, EncodeError

HARDENED = 0x80000000
#: Ledger Sync's application id (``m/0'/16'/<index>'``).
LEDGER_SYNC_APPLICATION_ID = 16
MAX_PATH_DEPTH = 63  # 4-byte indices in a 255-byte TLV value

Path = tuple[int, ...]
ROOT_PATH: Path = ()


def parse_path(text: str) -> Path:
    """``"m/0'/16'/0'"`` → ``(0x80000000, 0x80000010, 0x80000000)``; ``"m/"`` and ``"m"`` → ``()``.

    ``'``, ``h`` and ``H`` mark hardened indices.
    """
    if not isinstance(text, str):
        raise ValueError("a derivation path is a string such as m/0'/16'/0'")
    stripped = text.strip()
    if stripped in ("m", "m/"):
        return ROOT_PATH
    if not stripped.startswith("m/"):
        raise ValueError(f"derivation path {text!r} must start with m/")
    indices = []
    for part in stripped[2:].split("/"):
        hardened = part.endswith(("'", "h", "H"))
        digits = part[:-1] if hardened else part
        if not digits.isdigit() or not digits.isascii():
            raise ValueError(f"derivation path {text!r}: {part!r} is not an index")
        index = int(digits)
        if index >= HARDENED:
            raise ValueError(f"derivation path {text!r}: index {index} is too large")
        indices.append(index + HARDENED if hardened else index)
    if len(indices) > MAX_PATH_DEPTH:
        raise ValueError(f"derivation path {text!r} is deeper than {MAX_PATH_DEPTH} levels")
    return tuple(indices)


def format_path(path: Path) -> str:
    if not path:
        return "m/"
    return "m/" + "/".join(
        f"{index - HARDENED}'" if index >= HARDENED else str(index) for index in path
    )


def encode_path(path: Path) -> bytes:
    if len(path) > MAX_PATH_DEPTH:
        raise EncodeError(f"a path has at most {MAX_PATH_DEPTH} levels")
    try:
        return b"".join(index.to_bytes(4, "big") for index in path)
    except OverflowError as exc:
        raise EncodeError("a path index is an unsigned 32-bit integer") from exc


def decode_path(data: bytes) -> Path:
    if len(data) % 4:
        raise DecodeError(f"a derivation path is a multiple of 4 bytes, got {len(data)}")
    return tuple(int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4))


def is_hardened(path: Path) -> bool:
    return all(index >= HARDENED for index in path)


def application_path(application_id: int, index: int) -> Path:
    """The stream path Ledger Live uses for an application: ``m/0'/<appId>'/<index>'``."""
    if not 0 <= application_id < HARDENED or not 0 <= index < HARDENED:
        raise ValueError("application id and index are between 0 and 2**31 - 1")
    return (HARDENED, HARDENED + application_id, HARDENED + index)


def parse_application_path(path: Path) -> tuple[int, int] | None:
    """``(application_id, index)`` if ``path`` is an application path, else None."""
    if len(path) == 3 and path[0] == HARDENED and is_hardened(path):
        return path[1] - HARDENED, path[2] - HARDENED
    return None
