"""Blocks and streams (docs/protocol.md, "Blocks").

A block is a header (version, parent hash, issuer, command count), its commands and a DER
signature. Two digests matter and must not be confused:

* the *signing digest*, SHA-256 of the block without its signature TLV, is what the issuer
  signs;
* the *block hash*, SHA-256 of the whole block including the signature TLV, links parents and
  names streams and trustchains.

A stream is its blocks' encodings concatenated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from . import crypto, tlv
from .commands import Command, decode_command_body, encode_command
from .errors import DecodeError, EncodeError
from .tlv import FieldType, Reader

BLOCK_VERSION = 1
MAX_COMMANDS = 255


@dataclass(frozen=True, slots=True)
class Block:
    parent: bytes
    issuer: bytes
    commands: tuple[Command, ...]
    signature: bytes = b""
    version: int = BLOCK_VERSION

    def __post_init__(self) -> None:
        if len(self.parent) != tlv.HASH_LENGTH:
            raise EncodeError("a block's parent is a 32-byte hash")
        if len(self.issuer) != tlv.PUBLIC_KEY_LENGTH:
            raise EncodeError("a block's issuer is a 33-byte compressed public key")
        if not 1 <= len(self.commands) <= MAX_COMMANDS:
            raise EncodeError("a block holds between 1 and 255 commands")
        if not 0 <= self.version <= 0xFF:
            raise EncodeError("a block version is one byte")

    @property
    def is_signed(self) -> bool:
        return bool(self.signature)

    def encode_unsigned(self) -> bytes:
        """The bytes the issuer signs: header and commands, no signature TLV."""
        return (
            tlv.encode_int(self.version, 1)
            + tlv.encode_hash(self.parent)
            + tlv.encode_public_key(self.issuer)
            + tlv.encode_int(len(self.commands), 1)
            + b"".join(encode_command(command) for command in self.commands)
        )

    def encode(self) -> bytes:
        return self.encode_unsigned() + tlv.encode_signature(self.signature)

    def signing_digest(self) -> bytes:
        return crypto.sha256(self.encode_unsigned())

    def hash(self) -> bytes:
        return crypto.sha256(self.encode())

    def signed_with(self, secret: bytes) -> Block:
        """This block signed by ``secret``, which must be the issuer's private key."""
        if crypto.public_key_of(secret) != self.issuer:
            raise EncodeError("the signing key is not the block's issuer")
        return replace(self, signature=crypto.sign_digest(secret, self.signing_digest()))

    def verify_signature(self) -> None:
        """Raise :class:`~ledgersync.protocol.errors.SignatureError` unless the signature holds."""
        crypto.verify_signature(self.issuer, self.signing_digest(), self.signature)


@dataclass(frozen=True, slots=True)
class EncodedBlock:
    """A decoded block together with the exact bytes it came from."""

    block: Block
    encoded: bytes
    unsigned_length: int

    def hash(self) -> bytes:
        return crypto.sha256(self.encoded)

    def signing_digest(self) -> bytes:
        return crypto.sha256(self.encoded[: self.unsigned_length])


def _decode_block_at(data: bytes, pos: int) -> tuple[EncodedBlock, int]:
    start = pos
    reader = Reader(data, pos)
    version, _ = reader.read_int("block version", (1,))
    parent = reader.read_fixed(FieldType.HASH, "block parent", tlv.HASH_LENGTH)
    issuer = reader.read_public_key("block issuer")
    count, _ = reader.read_int("block command count", (1,))
    if count == 0:
        raise DecodeError("a block holds at least one command")
    commands = []
    for _ in range(count):
        tag, body_start, body_end = reader.read_span()
        commands.append(decode_command_body(tag, data, body_start, body_end))
    unsigned_end = reader.position
    signature = reader.read(FieldType.SIGNATURE, "block signature")
    if len(signature) > tlv.MAX_SIGNATURE_LENGTH:
        raise DecodeError(f"block signature is {len(signature)} bytes; at most 72")
    end = reader.position
    block = Block(parent, issuer, tuple(commands), signature, version)
    return EncodedBlock(block, data[start:end], unsigned_end - start), end


def decode_block(data: bytes) -> Block:
    """Decode exactly one block; trailing bytes are an error."""
    encoded, end = _decode_block_at(bytes(data), 0)
    if end != len(data):
        raise DecodeError(f"{len(data) - end} trailing bytes after the block")
    return encoded.block


def decode_stream_blocks(data: bytes) -> tuple[EncodedBlock, ...]:
    """Split a stream into its blocks, keeping each block's exact bytes."""
    data = bytes(data)
    blocks: list[EncodedBlock] = []
    pos = 0
    while pos < len(data):
        try:
            encoded, pos = _decode_block_at(data, pos)
        except DecodeError as exc:
            raise DecodeError(f"block {len(blocks)}: {exc}") from exc
        blocks.append(encoded)
    return tuple(blocks)


def decode_stream(data: bytes) -> tuple[Block, ...]:
    return tuple(encoded.block for encoded in decode_stream_blocks(data))


def encode_stream(blocks: Iterable[Block]) -> bytes:
    return b"".join(block.encode() for block in blocks)
