"""The Ledger Key Ring Protocol, sans I/O: bytes in, typed values out.

Nothing in this package touches the network, the disk or a clock; randomness is injectable.
Every failure on bad input raises a :class:`~ledgersync.protocol.errors.ProtocolError`.
"""

from .block import (
    Block,
    EncodedBlock,
    decode_block,
    decode_stream,
    decode_stream_blocks,
    encode_stream,
)
from .commands import (
    AddMember,
    CloseStream,
    Command,
    CommandType,
    Derive,
    EditMember,
    PublishKey,
    Seed,
    UnknownCommand,
    decode_command,
    encode_command,
)
from .crypto import KeyPair
from .errors import (
    ChallengeError,
    CryptoError,
    DecodeError,
    EncodeError,
    ProtocolError,
    ResolutionError,
    SignatureError,
)
from .inspection import Inspection, StreamReport, UnreadableInput, Violation, inspect_text
from .keys import StreamKey, WrappedKey, unwrap_xpriv, wrap_xpriv
from .paths import (
    LEDGER_SYNC_APPLICATION_ID,
    ROOT_PATH,
    Path,
    application_path,
    format_path,
    parse_path,
)
from .permissions import OWNER, PermissionRules
from .resolver import Member, ResolvedStream, extend_stream, resolve_stream
from .tree import StreamTree, read_key, resolve_tree, trustchain_id_from_hash

__all__ = [
    "LEDGER_SYNC_APPLICATION_ID",
    "OWNER",
    "ROOT_PATH",
    "AddMember",
    "Block",
    "ChallengeError",
    "CloseStream",
    "Command",
    "CommandType",
    "CryptoError",
    "DecodeError",
    "Derive",
    "EditMember",
    "EncodeError",
    "EncodedBlock",
    "Inspection",
    "KeyPair",
    "Member",
    "Path",
    "PermissionRules",
    "ProtocolError",
    "PublishKey",
    "ResolutionError",
    "ResolvedStream",
    "Seed",
    "SignatureError",
    "StreamKey",
    "StreamReport",
    "StreamTree",
    "UnknownCommand",
    "UnreadableInput",
    "Violation",
    "WrappedKey",
    "application_path",
    "decode_block",
    "decode_command",
    "decode_stream",
    "decode_stream_blocks",
    "encode_command",
    "encode_stream",
    "extend_stream",
    "format_path",
    "inspect_text",
    "parse_path",
    "read_key",
    "resolve_stream",
    "resolve_tree",
    "trustchain_id_from_hash",
    "unwrap_xpriv",
    "wrap_xpriv",
]
