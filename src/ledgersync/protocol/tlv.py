"""The TLV codec: one-byte tag, one-byte length, value (docs/protocol.md, "TLV").

Integers are unsigned big-endian with a fixed width per field; there is no varint and no
multi-byte length form, so no value is longer than 255 bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum

from .errors import DecodeError, EncodeError

MAX_VALUE_LENGTH = 255


class FieldType(IntEnum):
    NULL = 0x00
    INT = 0x01
    HASH = 0x02
    SIGNATURE = 0x03
    STRING = 0x04
    BYTES = 0x05
    PUBLIC_KEY = 0x06


HASH_LENGTH = 32
PUBLIC_KEY_LENGTH = 33
MAX_SIGNATURE_LENGTH = 72


def encode_tlv(tag: int, value: bytes) -> bytes:
    if len(value) > MAX_VALUE_LENGTH:
        raise EncodeError(f"TLV value of tag 0x{tag:02x} is {len(value)} bytes; at most 255 fit")
    return bytes((tag, len(value))) + value


def encode_int(value: int, width: int) -> bytes:
    if not 0 <= value < 1 << (8 * width):
        raise EncodeError(f"integer {value} does not fit in {width} unsigned bytes")
    return encode_tlv(FieldType.INT, value.to_bytes(width, "big"))


def encode_hash(value: bytes) -> bytes:
    if len(value) != HASH_LENGTH:
        raise EncodeError(f"a hash is 32 bytes, got {len(value)}")
    return encode_tlv(FieldType.HASH, value)


def encode_public_key(value: bytes) -> bytes:
    if len(value) != PUBLIC_KEY_LENGTH:
        raise EncodeError(f"a public key is 33 bytes, got {len(value)}")
    return encode_tlv(FieldType.PUBLIC_KEY, value)


def encode_bytes(value: bytes) -> bytes:
    return encode_tlv(FieldType.BYTES, value)


def encode_string(value: str) -> bytes:
    return encode_tlv(FieldType.STRING, value.encode("utf-8"))


def encode_signature(value: bytes) -> bytes:
    return encode_tlv(FieldType.SIGNATURE, value)


def encode_null() -> bytes:
    return b"\x00\x00"


class Reader:
    """A cursor over a buffer of TLVs; every read checks type, length and bounds."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end

    @property
    def position(self) -> int:
        return self._pos

    def at_end(self) -> bool:
        return self._pos >= self._end

    def peek_tag(self) -> int:
        if self._pos >= self._end:
            raise DecodeError("truncated: expected a TLV, found the end of the data")
        return self._data[self._pos]

    def read_raw(self) -> tuple[int, bytes]:
        """Read one TLV of any tag; returns (tag, value)."""
        tag, start, end = self.read_span()
        return tag, self._data[start:end]

    def read_span(self) -> tuple[int, int, int]:
        """Read one TLV header and skip its value; returns (tag, value_start, value_end)."""
        pos = self._pos
        if pos + 2 > self._end:
            raise DecodeError(f"truncated TLV header at offset {pos}")
        tag = self._data[pos]
        start = pos + 2
        end = start + self._data[pos + 1]
        if end > self._end:
            raise DecodeError(
                f"truncated TLV at offset {pos}: tag 0x{tag:02x} announces "
                f"{end - start} bytes, {self._end - start} remain"
            )
        self._pos = end
        return tag, start, end

    def read(self, expected: FieldType, what: str) -> bytes:
        tag, start, end = self.read_span()
        if tag != expected:
            raise DecodeError(
                f"{what}: expected {expected.name} (0x{expected:02x}), got tag 0x{tag:02x}"
            )
        return self._data[start:end]

    def read_int(self, what: str, widths: tuple[int, ...]) -> tuple[int, int]:
        """Read an Int whose width must be one of ``widths``; returns (value, width)."""
        value = self.read(FieldType.INT, what)
        if len(value) not in widths:
            allowed = " or ".join(str(w) for w in widths)
            raise DecodeError(f"{what}: Int must be {allowed} bytes wide, got {len(value)}")
        return int.from_bytes(value, "big"), len(value)

    def read_fixed(self, expected: FieldType, what: str, length: int) -> bytes:
        value = self.read(expected, what)
        if len(value) != length:
            raise DecodeError(f"{what}: expected {length} bytes, got {len(value)}")
        return value

    def read_public_key(self, what: str) -> bytes:
        return self.read_fixed(FieldType.PUBLIC_KEY, what, PUBLIC_KEY_LENGTH)

    def read_string(self, what: str) -> str:
        value = self.read(FieldType.STRING, what)
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{what}: not valid UTF-8") from exc

    def expect_end(self, what: str) -> None:
        if self._pos != self._end:
            raise DecodeError(f"{what}: {self._end - self._pos} trailing bytes")


def iter_tlvs(data: bytes) -> Iterator[tuple[int, bytes]]:
    reader = Reader(data)
    while not reader.at_end():
        yield reader.read_raw()
