"""An emulator of the Ledger Sync app: command APDUs in, responses out.

The APDUs are described in docs/protocol.md, "Device app APDUs".

It puts the app's wire layer in front of :class:`~ledgersync.device.app.LedgerSyncApp`:

* APDU framing and dispatch, with the app's status words for a bad CLA, INS, P1/P2 or
  length (``src/apdu/dispatcher.c``);
* the INIT session: a fresh device key pair, ``sessionKey = ECDH_x(device, host)``, the
  device public key revealed only in the finalize response;
* trusted properties: a fresh IV per response, shared by all its encrypted properties; the
  trusted-member blob (nonce, struct, checksum) under the session key. The PublishKey sign
  response carries the app's NEW_MEMBER bug: the encrypted command IV, not a member.

Randomness comes in two streams: ``random`` is the app's (keys, IVs and ciphertexts that end
up in blocks), ``session_random`` the wire layer's (session keys, response IVs, nonces). With
the same ``random`` the emulator and the software device make byte-identical blocks.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..protocol import crypto
from ..protocol.apdu import (
    APP_NAME,
    APP_VERSION,
    CLA,
    CLA_LEDGER_PKI,
    INS_LEDGER_PKI_LOAD_CERTIFICATE,
    BlockHeader,
    CommandApdu,
    Ins,
    OutputMode,
    ParseMode,
    SignatureResponse,
    SignMode,
    StatusWord,
    encode_response,
)
from ..protocol.challenge import Challenge, ChallengeFormatError, ChallengeValueError
from ..protocol.commands import Derive, PublishKey, Seed, decode_command
from ..protocol.crypto import KeyPair, Random
from ..protocol.errors import CryptoError, DecodeError
from ..protocol.templates import decode_template
from ..protocol.tlv import FieldType, Reader
from ..protocol.trusted import (
    MEMBER_NONCE_LENGTH,
    TrustedMember,
    TrustedProperties,
    TrustedProperty,
    encode_member_blob,
    open_member,
)
from .app import LedgerSyncApp, SignedCommand
from .approval import Approver
from .errors import (
    ApduError,
    BadStateError,
    ChallengeRejectedError,
    DeviceError,
    StreamRejectedError,
)
from .identity import DeviceIdentity

MEMBER_KEY_LENGTH = 33
#: What an unexpected failure answers (ISO 7816 "no precise diagnosis"); never expected.
TECHNICAL_PROBLEM = 0x6F00


def _wrong_p1p2() -> ApduError:
    return ApduError("wrong P1/P2", status_word=StatusWord.WRONG_P1P2)


class Emulator:
    def __init__(
        self,
        identity: DeviceIdentity,
        *,
        approver: Approver,
        random: Random = os.urandom,
        session_random: Random = os.urandom,
    ) -> None:
        self.app = LedgerSyncApp(identity, approver=approver, random=random)
        self._session_random = session_random
        self._session_key: bytes | None = None
        self._session_public_key = b""
        self._handlers: dict[int, Callable[[CommandApdu], bytes]] = {
            Ins.GET_VERSION: self._get_version,
            Ins.GET_APP_NAME: self._get_app_name,
            Ins.GET_SEED_ID: self._get_seed_id,
            Ins.INIT: self._init,
            Ins.SIGN_BLOCK: self._sign_block,
            Ins.PARSE_STREAM: self._parse_stream,
            Ins.SET_TRUSTED_MEMBER: self._set_trusted_member,
        }

    def exchange(self, apdu: bytes) -> bytes:
        """Process one command APDU; returns the response data followed by the status word."""
        try:
            command = CommandApdu.decode(apdu)
        except DecodeError:
            return encode_response(b"", StatusWord.WRONG_DATA_LENGTH)
        if command.cla == CLA_LEDGER_PKI and command.ins == INS_LEDGER_PKI_LOAD_CERTIFICATE:
            # What the app answers when the OS lacks Ledger-PKI (the emulated case).
            return encode_response(b"", StatusWord.CMD_CODE_NOT_SUPPORTED)
        if command.cla != CLA:
            return encode_response(b"", StatusWord.CLA_NOT_SUPPORTED)
        handler = self._handlers.get(command.ins)
        if handler is None:
            return encode_response(b"", StatusWord.INS_NOT_SUPPORTED)
        try:
            return encode_response(handler(command), StatusWord.OK)
        except DeviceError as exc:
            status = exc.status_word if exc.status_word is not None else TECHNICAL_PROBLEM
            return encode_response(b"", status)

    # --- information ----------------------------------------------------------------------

    def _get_version(self, command: CommandApdu) -> bytes:
        if command.p1 or command.p2:
            raise _wrong_p1p2()
        return bytes(APP_VERSION)

    def _get_app_name(self, command: CommandApdu) -> bytes:
        if command.p1 or command.p2:
            raise _wrong_p1p2()
        return APP_NAME.encode("ascii")

    def _get_seed_id(self, command: CommandApdu) -> bytes:
        if command.p1 or command.p2:
            raise _wrong_p1p2()
        try:
            challenge = Challenge.decode(command.data)
        except ChallengeFormatError as exc:
            raise ChallengeRejectedError(
                str(exc), status_word=StatusWord.PARSER_INVALID_FORMAT
            ) from exc
        except ChallengeValueError as exc:
            raise ChallengeRejectedError(
                str(exc), status_word=StatusWord.PARSER_INVALID_VALUE
            ) from exc
        return self.app.get_seed_id(challenge).encode()

    # --- session --------------------------------------------------------------------------

    def _init(self, command: CommandApdu) -> bytes:
        if len(command.data) != MEMBER_KEY_LENGTH:
            raise ApduError(
                "INIT takes a 33-byte session key", status_word=StatusWord.WRONG_DATA_LENGTH
            )
        self._close_session()
        session = KeyPair.generate(self._session_random)
        try:
            self._session_key = session.ecdh(command.data)
        except CryptoError as exc:
            raise ApduError(
                "the session key is not a secp256k1 point", status_word=StatusWord.WRONG_DATA
            ) from exc
        self._session_public_key = session.public_key
        self.app.open_session()
        return b""

    def _close_session(self) -> None:
        self._session_key = None
        self._session_public_key = b""

    def _require_session(self) -> bytes:
        if self._session_key is None or not self.app.session_open:
            raise BadStateError("no session: INIT first")
        return self._session_key

    def _seal(self, values: list[tuple[int, bytes]]) -> bytes:
        session_key = self._require_session()
        iv = self._session_random(crypto.GCM_IV_LENGTH)
        return TrustedProperties.seal(session_key, iv, values).encode()

    def _member_entry(self, member: TrustedMember) -> tuple[int, bytes]:
        nonce = self._session_random(MEMBER_NONCE_LENGTH)
        return TrustedProperty.NEW_MEMBER, encode_member_blob(member, nonce)

    # --- SIGN_BLOCK -----------------------------------------------------------------------

    def _sign_block(self, command: CommandApdu) -> bytes:
        if command.p1 > SignMode.FINALIZE:
            raise _wrong_p1p2()
        self._require_session()
        if command.p1 == SignMode.BLOCK_HEADER:
            try:
                header = BlockHeader.decode(command.data)
            except DecodeError as exc:
                raise StreamRejectedError(f"block header: {exc}") from exc
            issuer = self.app.sign_header(header)
            return self._seal([(TrustedProperty.ISSUER, issuer)])
        if command.p1 == SignMode.COMMAND:
            try:
                template = decode_template(command.data)
            except DecodeError as exc:
                # The app answers every SIGN command failure with 0xB007.
                raise BadStateError(f"command to sign: {exc}") from exc
            return self._seal(self._signed_properties(self.app.sign_command(template)))
        signature, parity = self.app.finalize()
        response = SignatureResponse(signature, parity, self._session_public_key)
        self._close_session()
        return response.encode()

    def _signed_properties(self, signed: SignedCommand) -> list[tuple[int, bytes]]:
        """The TPs the app pushes after filling a command in (``src/block/signer.c``)."""
        command = signed.command
        if isinstance(command, Seed | Derive | PublishKey):
            properties: list[tuple[int, bytes]] = [
                (TrustedProperty.XPRIV, command.encrypted_xpriv),
                (TrustedProperty.EPHEMERAL_PUBLIC_KEY, command.ephemeral_public_key),
                (TrustedProperty.COMMAND_IV, command.initialization_vector),
            ]
            if isinstance(command, PublishKey):
                # App bug kept for byte-shape fidelity: the command IV, not the member.
                properties.append((TrustedProperty.NEW_MEMBER, command.initialization_vector))
            else:
                properties.append((TrustedProperty.GROUP_KEY, command.group_key))
            return properties
        if signed.member is not None:  # AddMember
            return [self._member_entry(signed.member)]
        return []  # CloseStream: the IV alone

    # --- PARSE_STREAM and SET_TRUSTED_MEMBER ----------------------------------------------

    def _parse_stream(self, command: CommandApdu) -> bytes:
        if command.p1 > ParseMode.EMPTY_STREAM or command.p2 > OutputMode.TRUSTED_DATA:
            raise _wrong_p1p2()
        self._require_session()
        try:
            if command.p1 == ParseMode.EMPTY_STREAM:
                self.app.parse_empty_stream()
            elif command.p1 == ParseMode.BLOCK_HEADER:
                self.app.parse_header(BlockHeader.decode(command.data))
            elif command.p1 == ParseMode.SIGNATURE:
                reader = Reader(command.data)
                signature = reader.read(FieldType.SIGNATURE, "block signature")
                reader.expect_end("block signature")
                self.app.parse_signature(signature)
            else:
                member = self.app.parse_command(decode_command(command.data))
                if member is not None and command.p2 == OutputMode.TRUSTED_DATA:
                    return self._seal([self._member_entry(member)])
        except DecodeError as exc:
            raise StreamRejectedError(f"stream: {exc}") from exc
        return b""

    def _set_trusted_member(self, command: CommandApdu) -> bytes:
        if command.p1 or command.p2:
            raise _wrong_p1p2()
        session_key = self._require_session()
        try:
            member = open_member(TrustedProperties.decode(command.data), session_key)
        except DecodeError as exc:
            raise ApduError(f"trusted member: {exc}", status_word=StatusWord.WRONG_DATA) from exc
        self.app.set_trusted_member(member)
        return b""
