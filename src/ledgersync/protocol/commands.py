"""The six commands of a block (docs/protocol.md, "Commands"), as immutable values with their codec.

Each command's body is a fixed sequence of TLVs. Decoding keeps the few legacy variations
that exist in recorded streams (a 4-byte Seed protocol version, a Null topic, 64-byte CBC-era
ciphertexts) so that re-encoding a decoded command gives back the same bytes, and so the same
block hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from . import tlv
from .errors import DecodeError, EncodeError
from .paths import Path, decode_path, encode_path
from .tlv import FieldType, Reader

IV_LENGTH = 16


class CommandType(IntEnum):
    SEED = 0x10
    ADD_MEMBER = 0x11
    PUBLISH_KEY = 0x12
    CLOSE_STREAM = 0x13
    EDIT_MEMBER = 0x14
    DERIVE = 0x15


#: Tags the SDK parser treats as commands; unknown ones in this range decode as opaque.
COMMAND_TAG_RANGE = range(0x10, 0x40)


def _check_public_key(value: bytes, what: str) -> None:
    if len(value) != tlv.PUBLIC_KEY_LENGTH:
        raise EncodeError(f"{what} must be a 33-byte compressed public key")


def _check_iv(value: bytes) -> None:
    if len(value) != IV_LENGTH:
        raise EncodeError(f"initialization vector must be 16 bytes, got {len(value)}")


def _check_u32(value: int, what: str) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise EncodeError(f"{what} must be an unsigned 32-bit integer")


@dataclass(frozen=True, slots=True)
class Seed:
    """Creates the root stream; the issuer wraps a fresh random xpriv to itself."""

    TAG: ClassVar[int] = CommandType.SEED
    topic: bytes | None
    protocol_version: int
    group_key: bytes
    initialization_vector: bytes
    encrypted_xpriv: bytes
    ephemeral_public_key: bytes
    #: 2 on the wire today; 4 in legacy fixtures. Kept so re-encoding is byte-exact.
    protocol_version_width: int = 2

    def __post_init__(self) -> None:
        _check_public_key(self.group_key, "Seed group key")
        _check_public_key(self.ephemeral_public_key, "Seed ephemeral key")
        _check_iv(self.initialization_vector)
        if self.protocol_version_width not in (2, 4):
            raise EncodeError("Seed protocol version is 2 (or legacy 4) bytes wide")

    def encode_body(self) -> bytes:
        topic = tlv.encode_null() if self.topic is None else tlv.encode_bytes(self.topic)
        return b"".join(
            (
                topic,
                tlv.encode_int(self.protocol_version, self.protocol_version_width),
                tlv.encode_public_key(self.group_key),
                tlv.encode_bytes(self.initialization_vector),
                tlv.encode_bytes(self.encrypted_xpriv),
                tlv.encode_public_key(self.ephemeral_public_key),
            )
        )

    @classmethod
    def decode_body(cls, reader: Reader) -> Seed:
        tag, topic_value = reader.read_raw()
        if tag == FieldType.NULL:
            if topic_value:
                raise DecodeError("Seed topic: a Null TLV has no value")
            topic: bytes | None = None
        elif tag == FieldType.BYTES:
            topic = topic_value
        else:
            raise DecodeError(f"Seed topic: expected BYTES or NULL, got tag 0x{tag:02x}")
        version, width = reader.read_int("Seed protocol version", (2, 4))
        return cls(
            topic=topic,
            protocol_version=version,
            group_key=reader.read_public_key("Seed group key"),
            initialization_vector=reader.read_fixed(FieldType.BYTES, "Seed IV", IV_LENGTH),
            encrypted_xpriv=reader.read(FieldType.BYTES, "Seed encrypted xpriv"),
            ephemeral_public_key=reader.read_public_key("Seed ephemeral key"),
            protocol_version_width=width,
        )


@dataclass(frozen=True, slots=True)
class Derive:
    """Creates a derived stream at ``path`` (absolute from the root, hardened indices)."""

    TAG: ClassVar[int] = CommandType.DERIVE
    path: Path
    group_key: bytes
    initialization_vector: bytes
    encrypted_xpriv: bytes
    ephemeral_public_key: bytes

    def __post_init__(self) -> None:
        _check_public_key(self.group_key, "Derive group key")
        _check_public_key(self.ephemeral_public_key, "Derive ephemeral key")
        _check_iv(self.initialization_vector)
        for index in self.path:
            _check_u32(index, "a path index")

    def encode_body(self) -> bytes:
        return b"".join(
            (
                tlv.encode_bytes(encode_path(self.path)),
                tlv.encode_public_key(self.group_key),
                tlv.encode_bytes(self.initialization_vector),
                tlv.encode_bytes(self.encrypted_xpriv),
                tlv.encode_public_key(self.ephemeral_public_key),
            )
        )

    @classmethod
    def decode_body(cls, reader: Reader) -> Derive:
        return cls(
            path=decode_path(reader.read(FieldType.BYTES, "Derive path")),
            group_key=reader.read_public_key("Derive group key"),
            initialization_vector=reader.read_fixed(FieldType.BYTES, "Derive IV", IV_LENGTH),
            encrypted_xpriv=reader.read(FieldType.BYTES, "Derive encrypted xpriv"),
            ephemeral_public_key=reader.read_public_key("Derive ephemeral key"),
        )


@dataclass(frozen=True, slots=True)
class AddMember:
    """Adds ``public_key`` to the stream's members (it does not give the key)."""

    TAG: ClassVar[int] = CommandType.ADD_MEMBER
    name: str
    public_key: bytes
    permissions: int

    def __post_init__(self) -> None:
        _check_public_key(self.public_key, "AddMember key")
        _check_u32(self.permissions, "AddMember permissions")
        if not self.name:
            raise EncodeError("AddMember name must not be empty")

    def encode_body(self) -> bytes:
        return (
            tlv.encode_string(self.name)
            + tlv.encode_public_key(self.public_key)
            + tlv.encode_int(self.permissions, 4)
        )

    @classmethod
    def decode_body(cls, reader: Reader) -> AddMember:
        name = reader.read_string("AddMember name")
        if not name:
            raise DecodeError("AddMember name is empty")
        key = reader.read_public_key("AddMember key")
        permissions, _ = reader.read_int("AddMember permissions", (4,))
        return cls(name=name, public_key=key, permissions=permissions)


@dataclass(frozen=True, slots=True)
class PublishKey:
    """Gives the stream's xpriv to ``recipient``, encrypted to its key."""

    TAG: ClassVar[int] = CommandType.PUBLISH_KEY
    initialization_vector: bytes
    encrypted_xpriv: bytes
    recipient: bytes
    ephemeral_public_key: bytes

    def __post_init__(self) -> None:
        _check_public_key(self.recipient, "PublishKey recipient")
        _check_public_key(self.ephemeral_public_key, "PublishKey ephemeral key")
        _check_iv(self.initialization_vector)

    def encode_body(self) -> bytes:
        return b"".join(
            (
                tlv.encode_bytes(self.initialization_vector),
                tlv.encode_bytes(self.encrypted_xpriv),
                tlv.encode_public_key(self.recipient),
                tlv.encode_public_key(self.ephemeral_public_key),
            )
        )

    @classmethod
    def decode_body(cls, reader: Reader) -> PublishKey:
        return cls(
            initialization_vector=reader.read_fixed(FieldType.BYTES, "PublishKey IV", IV_LENGTH),
            encrypted_xpriv=reader.read(FieldType.BYTES, "PublishKey encrypted xpriv"),
            recipient=reader.read_public_key("PublishKey recipient"),
            ephemeral_public_key=reader.read_public_key("PublishKey ephemeral key"),
        )


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Closes the stream; Ledger Live then re-derives at the next index."""

    TAG: ClassVar[int] = CommandType.CLOSE_STREAM

    def encode_body(self) -> bytes:
        return b""

    @classmethod
    def decode_body(cls, reader: Reader) -> CloseStream:
        return cls()


@dataclass(frozen=True, slots=True)
class EditMember:
    """Defined by the TypeScript codec but emitted by no client and resolved by none."""

    TAG: ClassVar[int] = CommandType.EDIT_MEMBER
    member: bytes
    permissions: int | None
    name: str | None

    def __post_init__(self) -> None:
        _check_public_key(self.member, "EditMember key")
        if self.permissions is not None:
            _check_u32(self.permissions, "EditMember permissions")

    def encode_body(self) -> bytes:
        permissions = (
            tlv.encode_null() if self.permissions is None else tlv.encode_int(self.permissions, 4)
        )
        name = tlv.encode_null() if self.name is None else tlv.encode_string(self.name)
        return tlv.encode_public_key(self.member) + permissions + name

    @classmethod
    def decode_body(cls, reader: Reader) -> EditMember:
        member = reader.read_public_key("EditMember key")
        permissions: int | None = None
        if reader.peek_tag() == FieldType.NULL:
            _read_null(reader, "EditMember permissions")
        else:
            permissions, _ = reader.read_int("EditMember permissions", (4,))
        name: str | None = None
        if reader.peek_tag() == FieldType.NULL:
            _read_null(reader, "EditMember name")
        else:
            name = reader.read_string("EditMember name")
        return cls(member=member, permissions=permissions, name=name)


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    """A command tag in 0x10..0x3F that this version does not know; kept opaque."""

    tag: int
    body: bytes

    def __post_init__(self) -> None:
        if self.tag not in COMMAND_TAG_RANGE or self.tag in _DECODERS:
            raise EncodeError(f"0x{self.tag:02x} is not an unknown command tag")

    def encode_body(self) -> bytes:
        return self.body


def _read_null(reader: Reader, what: str) -> None:
    if reader.read(FieldType.NULL, what):
        raise DecodeError(f"{what}: a Null TLV has no value")


Command = Seed | Derive | AddMember | PublishKey | CloseStream | EditMember | UnknownCommand

_DECODERS: dict[int, type[Seed | Derive | AddMember | PublishKey | CloseStream | EditMember]] = {
    CommandType.SEED: Seed,
    CommandType.ADD_MEMBER: AddMember,
    CommandType.PUBLISH_KEY: PublishKey,
    CommandType.CLOSE_STREAM: CloseStream,
    CommandType.EDIT_MEMBER: EditMember,
    CommandType.DERIVE: Derive,
}


def command_tag(command: Command) -> int:
    return command.tag if isinstance(command, UnknownCommand) else command.TAG


def command_name(command: Command) -> str:
    if isinstance(command, UnknownCommand):
        return f"Unknown(0x{command.tag:02x})"
    return type(command).__name__


def encode_command(command: Command) -> bytes:
    return tlv.encode_tlv(command_tag(command), command.encode_body())


def decode_command_body(tag: int, data: bytes, start: int, end: int) -> Command:
    """Decode the body ``data[start:end]`` of a command TLV with tag ``tag``."""
    decoder = _DECODERS.get(tag)
    if decoder is None:
        if tag in COMMAND_TAG_RANGE:
            return UnknownCommand(tag, data[start:end])
        raise DecodeError(f"tag 0x{tag:02x} is not a command")
    reader = Reader(data, start, end)
    try:
        command = decoder.decode_body(reader)
    except EncodeError as exc:  # a value the constructor refuses is a decoding failure here
        raise DecodeError(str(exc)) from exc
    reader.expect_end(f"{decoder.__name__} body")
    return command


def decode_command(data: bytes) -> Command:
    """Decode exactly one command TLV."""
    reader = Reader(data)
    tag, start, end = reader.read_span()
    reader.expect_end("command")
    return decode_command_body(tag, data, start, end)
