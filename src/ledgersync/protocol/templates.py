"""The commands a host sends to SIGN_BLOCK, with placeholders for what the device fills in.

The device generates the keys, IVs and ciphertexts of Seed, Derive and PublishKey itself, so
the host sends each of those commands with placeholder fields, exactly as Ledger Live does
(docs/protocol.md, "Signing a block"):

* Seed: every generated field zero-filled at its real size (``05 40 00…`` for the xpriv);
* Derive: the path, then empty placeholders ``06 00 05 00 05 00 06 00``;
* PublishKey: ``05 00 05 00``, the recipient, ``06 00``;
* AddMember and CloseStream: the whole command.

The device reads the placeholders leniently (any length up to the field's size, the right
TLV type), so decoding here accepts both the zero-filled and the empty form.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import tlv
from .commands import (
    IV_LENGTH,
    AddMember,
    CloseStream,
    CommandType,
    Seed,
    decode_command,
    encode_command,
)
from .crypto import XPRIV_LENGTH
from .errors import DecodeError, EncodeError
from .keys import ENCRYPTED_XPRIV_LENGTH
from .paths import Path, decode_path, encode_path
from .tlv import FieldType, Reader

MAX_TOPIC_LENGTH = 32
SEED_PROTOCOL_VERSION = 0


@dataclass(frozen=True, slots=True)
class SeedTemplate:
    topic: bytes = b""
    protocol_version: int = SEED_PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if len(self.topic) > MAX_TOPIC_LENGTH:
            raise EncodeError(f"a Seed topic is at most 32 bytes, got {len(self.topic)}")
        if not 0 <= self.protocol_version <= 0xFFFF:
            raise EncodeError("the Seed protocol version is a 2-byte integer")


@dataclass(frozen=True, slots=True)
class DeriveTemplate:
    path: Path

    def __post_init__(self) -> None:
        encode_path(self.path)  # raises EncodeError for an index or a depth that cannot fit


@dataclass(frozen=True, slots=True)
class PublishKeyTemplate:
    recipient: bytes

    def __post_init__(self) -> None:
        if len(self.recipient) != tlv.PUBLIC_KEY_LENGTH:
            raise EncodeError("a PublishKey recipient is a 33-byte public key")


CommandTemplate = SeedTemplate | DeriveTemplate | AddMember | PublishKeyTemplate | CloseStream

_EMPTY_PUBLIC_KEY = tlv.encode_tlv(FieldType.PUBLIC_KEY, b"")
_EMPTY_BYTES = tlv.encode_tlv(FieldType.BYTES, b"")


def encode_template(template: CommandTemplate) -> bytes:
    """The command TLV Ledger Live sends to SIGN_BLOCK (P1=1) for ``template``."""
    if isinstance(template, SeedTemplate):
        return encode_command(
            Seed(
                topic=template.topic,
                protocol_version=template.protocol_version,
                group_key=bytes(tlv.PUBLIC_KEY_LENGTH),
                initialization_vector=bytes(IV_LENGTH),
                encrypted_xpriv=bytes(XPRIV_LENGTH),  # Ledger Live zero-fills the plaintext size
                ephemeral_public_key=bytes(tlv.PUBLIC_KEY_LENGTH),
            )
        )
    if isinstance(template, DeriveTemplate):
        body = (
            tlv.encode_bytes(encode_path(template.path))
            + _EMPTY_PUBLIC_KEY
            + _EMPTY_BYTES
            + _EMPTY_BYTES
            + _EMPTY_PUBLIC_KEY
        )
        return tlv.encode_tlv(CommandType.DERIVE, body)
    if isinstance(template, PublishKeyTemplate):
        body = (
            _EMPTY_BYTES
            + _EMPTY_BYTES
            + tlv.encode_public_key(template.recipient)
            + _EMPTY_PUBLIC_KEY
        )
        return tlv.encode_tlv(CommandType.PUBLISH_KEY, body)
    return encode_command(template)


def _skip_placeholder(reader: Reader, expected: FieldType, what: str, max_length: int) -> None:
    if len(reader.read(expected, what)) > max_length:
        raise DecodeError(f"{what} placeholder is longer than the field ({max_length} bytes)")


def decode_template(data: bytes) -> CommandTemplate:
    """Read one SIGN_BLOCK command as the device does; raises DecodeError."""
    outer = Reader(data)
    tag, start, end = outer.read_span()
    outer.expect_end("command")
    if tag in (CommandType.ADD_MEMBER, CommandType.CLOSE_STREAM):
        command = decode_command(data)
        assert isinstance(command, AddMember | CloseStream)
        return command
    reader = Reader(data, start, end)
    template: CommandTemplate
    if tag == CommandType.SEED:
        topic_tag, topic = reader.read_raw()
        if topic_tag not in (FieldType.BYTES, FieldType.NULL) or len(topic) > MAX_TOPIC_LENGTH:
            raise DecodeError("Seed topic must be Bytes (or Null) of at most 32 bytes")
        version, _ = reader.read_int("Seed protocol version", (2,))
        _skip_placeholder(reader, FieldType.PUBLIC_KEY, "Seed group key", tlv.PUBLIC_KEY_LENGTH)
        _skip_placeholder(reader, FieldType.BYTES, "Seed IV", IV_LENGTH)
        _skip_placeholder(reader, FieldType.BYTES, "Seed encrypted xpriv", ENCRYPTED_XPRIV_LENGTH)
        _skip_placeholder(reader, FieldType.PUBLIC_KEY, "Seed ephemeral key", tlv.PUBLIC_KEY_LENGTH)
        template = SeedTemplate(topic=topic, protocol_version=version)
    elif tag == CommandType.DERIVE:
        path = decode_path(reader.read(FieldType.BYTES, "Derive path"))
        _skip_placeholder(reader, FieldType.PUBLIC_KEY, "Derive group key", tlv.PUBLIC_KEY_LENGTH)
        _skip_placeholder(reader, FieldType.BYTES, "Derive IV", IV_LENGTH)
        _skip_placeholder(reader, FieldType.BYTES, "Derive encrypted xpriv", ENCRYPTED_XPRIV_LENGTH)
        _skip_placeholder(
            reader, FieldType.PUBLIC_KEY, "Derive ephemeral key", tlv.PUBLIC_KEY_LENGTH
        )
        template = DeriveTemplate(path)
    elif tag == CommandType.PUBLISH_KEY:
        _skip_placeholder(reader, FieldType.BYTES, "PublishKey IV", IV_LENGTH)
        _skip_placeholder(
            reader, FieldType.BYTES, "PublishKey encrypted xpriv", ENCRYPTED_XPRIV_LENGTH
        )
        recipient = reader.read_public_key("PublishKey recipient")
        _skip_placeholder(
            reader, FieldType.PUBLIC_KEY, "PublishKey ephemeral key", tlv.PUBLIC_KEY_LENGTH
        )
        template = PublishKeyTemplate(recipient)
    else:
        raise DecodeError(f"the device cannot sign a command with tag 0x{tag:02x}")
    reader.expect_end("command body")
    return template
