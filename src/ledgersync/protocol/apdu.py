"""APDU framing of the Ledger Sync device app (docs/protocol.md, "Device app APDUs"), sans I/O.

A command APDU is ``CLA INS P1 P2 Lc data`` with a one-byte Lc (so at most 255 bytes of
data); a response is ``data ‖ SW1 SW2``. The names follow the app's C sources
(``src/types.h``, ``src/sw.h``) so that a search for a name used in docs/protocol.md lands here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import coincurve

from . import tlv
from .errors import DecodeError, EncodeError
from .tlv import FieldType, Reader

CLA = 0xE0
#: The OS's Ledger-PKI class; an app running on an OS without PKI answers it itself.
CLA_LEDGER_PKI = 0xB0
INS_LEDGER_PKI_LOAD_CERTIFICATE = 0x06

APP_NAME = "Ledger Sync"
#: The app version the emulator reports (app-ledger-sync v1.1.1, the newest one read).
APP_VERSION = (1, 1, 1)

MAX_DATA_LENGTH = 255
HEADER_LENGTH = 5


class Ins(IntEnum):
    GET_VERSION = 0x03
    GET_APP_NAME = 0x04
    GET_SEED_ID = 0x05
    INIT = 0x06
    SIGN_BLOCK = 0x07
    PARSE_STREAM = 0x08
    SET_TRUSTED_MEMBER = 0x09


class SignMode(IntEnum):
    """P1 of SIGN_BLOCK."""

    BLOCK_HEADER = 0x00
    COMMAND = 0x01
    FINALIZE = 0x02


class ParseMode(IntEnum):
    """P1 of PARSE_STREAM."""

    BLOCK_HEADER = 0x00
    COMMAND = 0x01
    SIGNATURE = 0x02
    EMPTY_STREAM = 0x03


class OutputMode(IntEnum):
    """P2 of PARSE_STREAM: whether the device returns trusted properties."""

    NONE = 0x00
    TRUSTED_DATA = 0x01


class StatusWord(IntEnum):
    OK = 0x9000
    DENY = 0x6985
    WRONG_DATA = 0x6A80
    WRONG_P1P2 = 0x6A86
    WRONG_DATA_LENGTH = 0x6A87
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    CMD_CODE_NOT_SUPPORTED = 0x911C
    WRONG_RESPONSE_LENGTH = 0xB000
    BAD_STATE = 0xB007
    SIGNATURE_FAIL = 0xB008
    STREAM_PARSER_BAD_STATE = 0xB009
    STREAM_PARSER_INVALID_FORMAT = 0xB00A
    TP_BUFFER_OVERFLOW = 0xB00B
    STREAM_CLOSED = 0xB00C
    PARSER_INVALID_FORMAT = 0xB00D
    PARSER_INVALID_VALUE = 0xB00E
    CHALLENGE_NOT_VERIFIED = 0xB00F


@dataclass(frozen=True, slots=True)
class CommandApdu:
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    cla: int = CLA

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise EncodeError(f"APDU {name.upper()} is one byte")
        if len(self.data) > MAX_DATA_LENGTH:
            raise EncodeError(f"APDU data is at most 255 bytes, got {len(self.data)}")

    def encode(self) -> bytes:
        return bytes((self.cla, self.ins, self.p1, self.p2, len(self.data))) + self.data

    @classmethod
    def decode(cls, apdu: bytes) -> CommandApdu:
        """Parse a command APDU; a short header or an Lc that disagrees is a DecodeError."""
        if len(apdu) < HEADER_LENGTH:
            raise DecodeError(f"an APDU has a 5-byte header, got {len(apdu)} bytes")
        cla, ins, p1, p2, lc = apdu[:HEADER_LENGTH]
        if len(apdu) - HEADER_LENGTH != lc:
            raise DecodeError(f"APDU Lc says {lc} bytes of data, {len(apdu) - 5} follow")
        return cls(ins=ins, p1=p1, p2=p2, data=bytes(apdu[HEADER_LENGTH:]), cla=cla)


def encode_response(data: bytes, status_word: int) -> bytes:
    return bytes(data) + status_word.to_bytes(2, "big")


def split_response(response: bytes) -> tuple[bytes, int]:
    """``data ‖ SW`` → (data, SW)."""
    if len(response) < 2:
        raise DecodeError(f"a response ends with a 2-byte status word, got {len(response)} bytes")
    return bytes(response[:-2]), int.from_bytes(response[-2:], "big")


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The four header TLVs of a block as sent to PARSE_STREAM and SIGN_BLOCK (P1=0)."""

    parent: bytes
    issuer: bytes
    command_count: int
    version: int = 1

    def __post_init__(self) -> None:
        if len(self.parent) != tlv.HASH_LENGTH:
            raise EncodeError("a block's parent is a 32-byte hash")
        if len(self.issuer) != tlv.PUBLIC_KEY_LENGTH:
            raise EncodeError("a block's issuer is a 33-byte public key")
        if not 0 <= self.command_count <= 0xFF or not 0 <= self.version <= 0xFF:
            raise EncodeError("a block's version and command count are one byte each")

    def encode(self) -> bytes:
        return (
            tlv.encode_int(self.version, 1)
            + tlv.encode_hash(self.parent)
            + tlv.encode_public_key(self.issuer)
            + tlv.encode_int(self.command_count, 1)
        )

    @classmethod
    def decode(cls, data: bytes) -> BlockHeader:
        reader = Reader(data)
        version, _ = reader.read_int("block version", (1,))
        parent = reader.read_fixed(FieldType.HASH, "block parent", tlv.HASH_LENGTH)
        issuer = reader.read_public_key("block issuer")
        count, _ = reader.read_int("block command count", (1,))
        reader.expect_end("block header")
        return cls(parent=parent, issuer=issuer, command_count=count, version=version)


#: What the host sends as the issuer of a block to sign; the device writes its own key there.
ISSUER_PLACEHOLDER = b"\x03" + bytes(32)


@dataclass(frozen=True, slots=True)
class SignatureResponse:
    """SIGN_BLOCK finalize: ``len ‖ DER signature ‖ v ‖ device session public key``.

    ``parity`` (v) is the parity of R's y coordinate; clients ignore it. The session key is
    revealed only here, so the host can read no encrypted trusted property before the user
    approved every command (docs/protocol.md, "Signing a block").
    """

    signature: bytes
    parity: int
    session_public_key: bytes

    def encode(self) -> bytes:
        return (
            bytes((len(self.signature),))
            + self.signature
            + bytes((self.parity,))
            + self.session_public_key
        )

    @classmethod
    def decode(cls, data: bytes) -> SignatureResponse:
        if not data:
            raise DecodeError("the signature response is empty")
        end = 1 + data[0]
        if len(data) != end + 1 + tlv.PUBLIC_KEY_LENGTH:
            raise DecodeError(
                f"the signature response is {len(data)} bytes; a {data[0]}-byte signature "
                f"makes it {end + 1 + tlv.PUBLIC_KEY_LENGTH}"
            )
        return cls(
            signature=bytes(data[1:end]),
            parity=data[end],
            session_public_key=bytes(data[end + 1 :]),
        )


def signature_parity(secret: bytes, digest: bytes) -> int:
    """The ``v`` byte of a finalize response: the y parity of the RFC 6979 signature's R.

    It is the low bit of the recovery id of the same (low-S) signature that
    :func:`~ledgersync.protocol.crypto.sign_digest` makes.
    """
    if len(digest) != 32:
        raise EncodeError(f"a digest is 32 bytes, got {len(digest)}")
    recoverable = coincurve.PrivateKey(secret).sign_recoverable(digest, hasher=None)
    return recoverable[-1] & 1
