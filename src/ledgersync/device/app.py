"""The Ledger Sync device app's logic, on typed values instead of APDUs.

The app is described in docs/protocol.md, "Device app APDUs".

This is the one place where device rules live. The software device drives it directly; the
emulator puts the APDU codec, the session ECDH and the trusted-property encryption in front
of it. Both therefore refuse and accept exactly the same things.

State, as in the app (``src/stream/stream.h``), all cleared by :meth:`open_session` (INIT)
and after each signature (finalize):

* the parsed stream: created / closed, the hash of the last block parsed, the one xpriv the
  device can read (``shared_secret``: the root key from its own Seed, then the key of its
  own Derive), and the single trusted-member slot;
* the parser position (expect header, command or signature) and the bytes of the block
  being parsed, for the signature check and the block hash;
* the signer: the header's command count, the commands filled so far and their bytes.

Deliberate differences from app v1.1.1, each safer and invisible to a correct host:

* a refused AddMember or CloseStream ends the session (the app keeps the command in its
  digest, so a host could still finalize a block the user refused);
* a Seed after the stream is created, a Derive with an empty path and a block announcing no
  command are refused;
* after a block's signature the parser expects a header (the app would accept the
  signature twice).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from enum import Enum

from ..protocol import crypto, permissions
from ..protocol.apdu import BlockHeader, signature_parity
from ..protocol.builders import derive_command, generate_xpriv, publish_key_command, seed_command
from ..protocol.challenge import Challenge, SeedIdResponse, sign_seed_id
from ..protocol.commands import (
    AddMember,
    CloseStream,
    Command,
    Derive,
    PublishKey,
    Seed,
    command_name,
    encode_command,
)
from ..protocol.crypto import Random
from ..protocol.errors import ChallengeError, CryptoError, SignatureError
from ..protocol.keys import ENCRYPTED_XPRIV_LENGTH, WrappedKey, unwrap_xpriv
from ..protocol.paths import format_path, is_hardened
from ..protocol.templates import CommandTemplate, DeriveTemplate, PublishKeyTemplate, SeedTemplate
from ..protocol.tlv import MAX_SIGNATURE_LENGTH, encode_signature
from ..protocol.trusted import TrustedMember
from .approval import ApprovalKind, ApprovalRequest, Approver
from .errors import (
    BadStateError,
    ChallengeRejectedError,
    ParserStateError,
    StreamClosedError,
    StreamRejectedError,
    UserRefusedError,
    WrongSeedError,
)
from .identity import DeviceIdentity

#: The app's BIP32 path buffer holds 10 indices.
MAX_DERIVATION_DEPTH = 10


class ParseState(Enum):
    HEADER = "header"
    COMMAND = "command"
    SIGNATURE = "signature"


@dataclass
class _Stream:
    created: bool = False
    closed: bool = False
    last_block_hash: bytes = b""
    shared_secret: bytes | None = field(default=None, repr=False)
    trusted_member: TrustedMember | None = None
    state: ParseState = ParseState.HEADER
    issuer: bytes = b""
    command_count: int = 0
    parsed_commands: int = 0
    block: bytearray = field(default_factory=bytearray)


@dataclass
class _Signer:
    command_count: int = 0
    parsed_commands: int = 0
    block: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True, slots=True)
class SignedCommand:
    """A command as the device filled it in, and the trusted member it now holds, if any."""

    command: Command
    member: TrustedMember | None = None


class LedgerSyncApp:
    def __init__(
        self, identity: DeviceIdentity, *, approver: Approver, random: Random = os.urandom
    ) -> None:
        self._identity = identity
        self._approver = approver
        self._random = random
        self._session_open = False
        self._stream = _Stream()
        self._signer = _Signer()

    @property
    def public_key(self) -> bytes:
        return self._identity.public_key

    @property
    def session_open(self) -> bool:
        return self._session_open

    # --- session --------------------------------------------------------------------------

    def open_session(self) -> None:
        """INIT: forget every stream and signature in progress and start afresh."""
        self._reset()
        self._session_open = True

    def _reset(self) -> None:
        self._session_open = False
        self._stream = _Stream()
        self._signer = _Signer()

    def _require_session(self) -> None:
        if not self._session_open:
            raise BadStateError("no signing session: the host must send INIT first")

    # --- PARSE_STREAM ---------------------------------------------------------------------

    def parse_empty_stream(self) -> None:
        self._require_session()
        self._restart_parser()

    def _restart_parser(self) -> None:
        self._stream.state = ParseState.HEADER
        self._stream.block = bytearray()

    def parse_header(self, header: BlockHeader) -> None:
        self._require_session()
        stream = self._stream
        if stream.state is not ParseState.HEADER:
            self._restart_parser()
        if header.command_count == 0:
            raise StreamRejectedError("a block announcing no command cannot be parsed")
        if stream.created:
            if header.parent != stream.last_block_hash:
                raise StreamRejectedError("the block's parent is not the last block parsed")
            trusted = stream.trusted_member
            if header.issuer != self.public_key and (
                trusted is None or header.issuer != trusted.public_key
            ):
                raise StreamRejectedError(
                    f"issuer {header.issuer.hex()} is neither this device nor the trusted member"
                )
        stream.issuer = header.issuer
        stream.command_count = header.command_count
        stream.parsed_commands = 0
        stream.block = bytearray(header.encode())
        stream.state = ParseState.COMMAND

    def parse_command(self, command: Command) -> TrustedMember | None:
        """Replay one command; returns the trusted member the device outputs (P2=1), if any."""
        self._require_session()
        stream = self._stream
        if stream.state is not ParseState.COMMAND:
            expected = stream.state.value
            self._restart_parser()
            raise ParserStateError(f"{command_name(command)} received where a {expected} was due")
        if not stream.created and not isinstance(command, Seed):
            raise StreamRejectedError("a stream must start with Seed")
        output: TrustedMember | None = None
        from_device = stream.issuer == self.public_key
        if isinstance(command, Seed | Derive):
            if isinstance(command, Seed) and stream.created:
                raise StreamRejectedError("Seed only opens a stream")
            _require_gcm_era(command)
            if from_device:
                stream.shared_secret = self._unwrap(command)
            elif isinstance(command, Seed):
                output = TrustedMember(stream.issuer, permissions.OWNER, owns_key=True)
            stream.created = True
        elif isinstance(command, AddMember):
            if command.public_key != self.public_key:
                output = TrustedMember(command.public_key, command.permissions, owns_key=False)
        elif isinstance(command, PublishKey):
            _require_gcm_era(command)
            trusted = stream.trusted_member
            if trusted is not None and command.recipient == trusted.public_key:
                output = replace(trusted, owns_key=True)
        elif isinstance(command, CloseStream):
            stream.closed = True
        else:
            raise StreamRejectedError(f"the app does not support {command_name(command)}")
        if output is not None:
            stream.trusted_member = output
        stream.block += encode_command(_as_hashed(command))
        stream.parsed_commands += 1
        if stream.parsed_commands >= stream.command_count:
            stream.state = ParseState.SIGNATURE
        if stream.closed and output is None:
            # The app answers 0xB00C here, yet keeps its state: the signature may still come.
            raise StreamClosedError("the stream is closed: it holds a CloseStream")
        return output

    def _unwrap(self, command: Seed | Derive) -> bytes:
        wrapped = WrappedKey(
            command.initialization_vector, command.encrypted_xpriv, command.ephemeral_public_key
        )
        try:
            return unwrap_xpriv(self._identity.seed_id.private_key, wrapped)
        except CryptoError as exc:
            raise StreamRejectedError(
                f"the key of this device's {command_name(command)} does not decrypt"
            ) from exc

    def parse_signature(self, signature: bytes) -> None:
        self._require_session()
        stream = self._stream
        if stream.state is not ParseState.SIGNATURE:
            self._restart_parser()
            raise ParserStateError("a signature received before all the block's commands")
        if len(signature) > MAX_SIGNATURE_LENGTH:
            raise StreamRejectedError("a block signature is at most 72 bytes")
        try:
            # The device's verifier (cx_ecdsa_verify) accepts high-S signatures.
            crypto.verify_signature(
                stream.issuer, crypto.sha256(bytes(stream.block)), signature, allow_high_s=True
            )
        except (SignatureError, CryptoError) as exc:
            raise StreamRejectedError(f"the block's signature does not verify: {exc}") from exc
        stream.last_block_hash = crypto.sha256(bytes(stream.block) + encode_signature(signature))
        self._restart_parser()

    def set_trusted_member(self, member: TrustedMember) -> None:
        self._require_session()
        self._stream.trusted_member = member

    # --- SIGN_BLOCK -----------------------------------------------------------------------

    def sign_header(self, header: BlockHeader) -> bytes:
        """Start a block: returns the issuer the device writes in (its own key)."""
        self._require_session()
        if header.command_count == 0:
            raise StreamRejectedError("a block to sign needs at least one command")
        if self._stream.created and header.parent != self._stream.last_block_hash:
            raise StreamRejectedError(
                "the block's parent is not the last block parsed: the stream changed"
            )
        real = BlockHeader(header.parent, self.public_key, header.command_count, header.version)
        self._signer = _Signer(command_count=header.command_count, block=bytearray(real.encode()))
        return self.public_key

    def sign_command(self, template: CommandTemplate) -> SignedCommand:
        self._require_session()
        if self._signer.command_count == 0:
            raise BadStateError("a command to sign arrived before its block header")
        signed = self._fill(template)
        self._signer.block += encode_command(signed.command)
        self._signer.parsed_commands += 1
        return signed

    def _fill(self, template: CommandTemplate) -> SignedCommand:
        stream = self._stream
        me = self.public_key
        if isinstance(template, SeedTemplate):
            if stream.created:
                raise BadStateError("a trustchain is already parsed; Seed only creates one")
            xpriv = generate_xpriv(self._random)
            seed = seed_command(me, xpriv, template.topic, self._random)
            stream.created = True
            stream.shared_secret = xpriv
            return SignedCommand(replace(seed, protocol_version=template.protocol_version))
        if isinstance(template, DeriveTemplate):
            if stream.shared_secret is None:
                raise WrongSeedError(
                    "this device holds no key of the trustchain: it was created with another seed"
                )
            path = template.path
            if not path or len(path) > MAX_DERIVATION_DEPTH or not is_hardened(path):
                raise BadStateError(
                    f"Derive path {format_path(path)} must be 1 to 10 hardened indices"
                )
            derive, xpriv = derive_command(me, stream.shared_secret, path, self._random)
            stream.shared_secret = xpriv
            return SignedCommand(derive)
        if isinstance(template, AddMember):
            if not stream.created:
                raise BadStateError("AddMember needs a parsed stream")
            stream.trusted_member = TrustedMember(
                template.public_key, template.permissions, owns_key=False
            )
            self._ask(ApprovalRequest(ApprovalKind.ADD_MEMBER, template.name, template.public_key))
            return SignedCommand(template, stream.trusted_member)
        if isinstance(template, PublishKeyTemplate):
            trusted = stream.trusted_member
            if trusted is None or trusted.public_key != template.recipient:
                raise BadStateError("PublishKey's recipient must be the member just trusted")
            if stream.shared_secret is None:
                raise WrongSeedError(
                    "this device holds no key of this stream: it was created with another seed"
                )
            publish = publish_key_command(stream.shared_secret, template.recipient, self._random)
            stream.trusted_member = replace(trusted, owns_key=True)
            return SignedCommand(publish, stream.trusted_member)
        self._ask(ApprovalRequest(ApprovalKind.CLOSE_STREAM))
        stream.closed = True
        return SignedCommand(template)

    def _ask(self, request: ApprovalRequest) -> None:
        if not self._approver(request):
            self._reset()
            raise UserRefusedError(f"refused on the device: {request.prompt}")

    def finalize(self) -> tuple[bytes, int]:
        """Sign the block: returns the DER signature and the parity byte, then resets."""
        self._require_session()
        signer = self._signer
        try:
            if signer.command_count == 0:
                raise BadStateError("no block to sign: the header never came")
            if signer.parsed_commands != signer.command_count:
                raise BadStateError(
                    f"the header announced {signer.command_count} commands, "
                    f"{signer.parsed_commands} came"
                )
            digest = crypto.sha256(bytes(signer.block))
            secret = self._identity.seed_id.private_key
            return crypto.sign_digest(secret, digest), signature_parity(secret, digest)
        finally:
            self._reset()

    # --- GET_SEED_ID ----------------------------------------------------------------------

    def get_seed_id(self, challenge: Challenge) -> SeedIdResponse:
        """Sign a login challenge once the user approves (no session needed)."""
        try:
            challenge.verify_rp_signature(allow_high_s=True)
        except ChallengeError as exc:
            raise ChallengeRejectedError(str(exc)) from exc
        request = ApprovalRequest(ApprovalKind.LOGIN, challenge.host)
        if not self._approver(request):
            raise UserRefusedError(f"refused on the device: {request.prompt}")
        return sign_seed_id(
            challenge, self._identity.seed_id.private_key, self._identity.attestation.private_key
        )


def _require_gcm_era(command: Seed | Derive | PublishKey) -> None:
    # The app always hashes an 80-byte ciphertext: a CBC-era 64-byte one cannot verify.
    if len(command.encrypted_xpriv) != ENCRYPTED_XPRIV_LENGTH:
        raise StreamRejectedError(
            f"{command_name(command)} carries a {len(command.encrypted_xpriv)}-byte key; "
            "the app only parses GCM-era (80-byte) ones"
        )


def _as_hashed(command: Command) -> Command:
    """The command as the device hashes it: a missing Seed topic counts as empty Bytes."""
    if isinstance(command, Seed) and command.topic is None:
        return replace(command, topic=b"")
    return command
