"""QR-code pairing, host and candidate (``ledger-sync-api.md`` §6, ``lkrp-protocol.md`` App. A).

Same frames, crypto and 3-digit check as Ledger Live, so a Python instance pairs with a Ledger
Live instance through any compatible relay, in either role:

1. the host opens ``<api ws>/v1/qr?host=<its ephemeral key>`` and shows that URL as a QR code;
2. the candidate scans it, connects, and sends ``InitiateHandshake`` with its ephemeral key;
3. the host shows 3 digits and sends ``HandshakeChallenge``; the user types the digits on the
   candidate (``CompleteHandshakeChallenge``); the host answers
   ``HandshakeCompletionSucceeded`` or a ``Failure``;
4. whoever has a trustchain adds the other one with ``add_member`` and sends it the trustchain
   (``TrustchainShareCredential`` / ``TrustchainRequestCredential`` /
   ``TrustchainAddedMember``).

Stricter than Ledger's code, and still compatible with it: credentials are only exchanged after
the digits were checked (Ledger's host would accept a ``TrustchainShareCredential`` right
after ``InitiateHandshake``, bypassing the check), the session key cannot be changed once set,
and frames the relay would echo back (our own publisher) are ignored.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..protocol import qr
from ..protocol.crypto import KeyPair, Random
from ..protocol.errors import CryptoError, ProtocolError
from ..protocol.permissions import OWNER
from .credentials import MemberCredentials, Trustchain, TrustchainMember
from .errors import (
    InvalidArgument,
    InvalidDigitsError,
    InvalidEncryptionKeyError,
    LedgerSyncError,
    NetworkError,
    NoTrustchainInitialized,
    QRCodeProtocolError,
    QRCodeWSClosed,
    ScannedInvalidQrCode,
    ScannedOldImportQrCode,
    TrustchainAlreadyInitialized,
)
from .trustchain import TrustchainSDK

log = logging.getLogger(__name__)

M = qr.MessageType
AddMember = Callable[[TrustchainMember], Awaitable[Trustchain]]


@dataclass(frozen=True, slots=True)
class DigitsRequest:
    """What the host's ``HandshakeChallenge`` asks the candidate's user for."""

    digits: int
    connected: bool


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def failure_error(payload: dict[str, Any]) -> LedgerSyncError:
    """The error a peer's ``Failure`` stands for (Ledger's ``fromErrorMessage``)."""
    kind, message = str(payload.get("type", "")), str(payload.get("message", ""))
    if kind == qr.FailureType.HANDSHAKE_COMPLETION_FAILED:
        return InvalidDigitsError(message or "invalid digits")
    if kind == qr.FailureType.UNEXPECTED_SHARE_CREDENTIAL:
        return NoTrustchainInitialized(message or "unexpected share credential")
    if kind == qr.FailureType.UNEXPECTED_REQUEST_CREDENTIAL:
        return TrustchainAlreadyInitialized(message)
    return QRCodeProtocolError(kind, message or kind)


class _Pairing:
    """One side of a pairing session: the socket, the keys and the common message handling."""

    def __init__(
        self,
        credentials: MemberCredentials,
        member_name: str,
        add_member: AddMember,
        initial_trustchain_id: str | None,
        random: Random,
    ) -> None:
        self.credentials = credentials
        self.member_name = member_name
        self.add_member = add_member
        self.initial_trustchain_id = initial_trustchain_id
        self.random = random
        self.ephemeral = KeyPair.generate(random)
        self.publisher = self.ephemeral.public_key.hex()
        self.cipher: qr.SessionCipher | None = None
        self.verified = False
        self.ws: ClientConnection | None = None
        self.started = time.monotonic()

    async def open(self, url: str) -> None:
        try:
            self.ws = await connect(url, open_timeout=30)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise NetworkError(f"cannot open the pairing socket {url}: {exc}", url=url) from exc

    async def send(self, message: qr.MessageType, payload: dict[str, Any]) -> None:
        assert self.ws is not None
        frame = qr.Message(self.publisher, message.value, payload).encode()
        try:
            await self.ws.send(frame)
        except ConnectionClosed as exc:
            raise QRCodeWSClosed(time=time.monotonic() - self.started) from exc

    async def send_encrypted(self, message: qr.MessageType, payload: dict[str, Any]) -> None:
        await self.send(message, self._cipher().encrypt_payload(payload, self.random))

    async def fail(self, kind: qr.FailureType, message: str) -> None:
        await self.send(M.FAILURE, {"type": kind.value, "message": message})

    def _cipher(self) -> qr.SessionCipher:
        if self.cipher is None:
            raise QRCodeProtocolError("UNEXPECTED_MESSAGE", "no session key: handshake missing")
        return self.cipher

    def decrypt(self, message: qr.Message) -> dict[str, Any]:
        try:
            return self._cipher().decrypt_message(message)
        except qr.QRDecryptionError as exc:
            raise InvalidEncryptionKeyError("data can't be decrypted") from exc
        except ProtocolError as exc:
            raise QRCodeProtocolError("INVALID_MESSAGE", str(exc)) from exc

    def _require_verified(self, message: qr.Message) -> None:
        if not self.verified:
            raise QRCodeProtocolError(
                "UNEXPECTED_MESSAGE", f"{message.message} before the digits were checked"
            )

    async def messages(self) -> AsyncGenerator[qr.Message, None]:
        """Parsed frames from the peer until the socket closes."""
        assert self.ws is not None
        try:
            async for frame in self.ws:
                try:
                    message = qr.parse_message(frame)
                except qr.QRFrameError as exc:
                    raise QRCodeProtocolError("INVALID_MESSAGE", str(exc)) from exc
                if message.publisher == self.publisher:
                    continue  # a relay echoing our own frame
                yield message
        except ConnectionClosed:
            pass
        raise QRCodeWSClosed(time=time.monotonic() - self.started)

    async def common(self, message: qr.Message) -> tuple[bool, Trustchain | None]:
        """Messages both roles handle; returns (finished, trustchain received)."""
        kind = message.message
        if kind == M.TRUSTCHAIN_SHARE_CREDENTIAL:
            self._require_verified(message)
            if not self.initial_trustchain_id:
                await self.fail(
                    qr.FailureType.UNEXPECTED_SHARE_CREDENTIAL, "unexpected share credential"
                )
                raise NoTrustchainInitialized("unexpected share credential")
            body = self.decrypt(message)
            try:
                member = TrustchainMember.from_json({**body, "permissions": OWNER})
            except InvalidArgument as exc:
                raise QRCodeProtocolError("INVALID_MESSAGE", f"shared credential: {exc}") from exc
            trustchain = await self.add_member(member)
            await self.send_encrypted(
                M.TRUSTCHAIN_ADDED_MEMBER, {"trustchain": trustchain.to_json()}
            )
            return True, None
        if kind == M.TRUSTCHAIN_REQUEST_CREDENTIAL:
            self._require_verified(message)
            if self.initial_trustchain_id:
                await self.fail(
                    qr.FailureType.UNEXPECTED_REQUEST_CREDENTIAL, self.initial_trustchain_id
                )
                raise TrustchainAlreadyInitialized(self.initial_trustchain_id)
            await self.send_encrypted(
                M.TRUSTCHAIN_SHARE_CREDENTIAL,
                {"id": self.credentials.pubkey, "name": self.member_name},
            )
            return False, None
        if kind == M.TRUSTCHAIN_ADDED_MEMBER:
            self._require_verified(message)
            body = self.decrypt(message)
            try:
                return True, Trustchain.from_json(body.get("trustchain"))
            except InvalidArgument as exc:
                raise QRCodeProtocolError("INVALID_MESSAGE", f"trustchain: {exc}") from exc
        if kind == M.FAILURE:
            raise failure_error(message.payload)
        if kind in (
            M.HANDSHAKE_CHALLENGE,
            M.HANDSHAKE_COMPLETION_SUCCEEDED,
            M.INITIATE_HANDSHAKE,
            M.COMPLETE_HANDSHAKE_CHALLENGE,
        ):
            return False, None
        raise QRCodeProtocolError("UNEXPECTED_MESSAGE", f"unexpected message {kind!r}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def create_qr_code_host_instance(
    *,
    trustchain_api_base_url: str,
    on_display_qr_code: Callable[[str], Any],
    on_display_digits: Callable[[str], Any],
    add_member: AddMember,
    member_credentials: MemberCredentials,
    member_name: str,
    initial_trustchain_id: str | None = None,
    random: Random = os.urandom,
) -> Trustchain | None:
    """Show a QR code and pair with the instance that scans it.

    Returns the trustchain the candidate added us to, or None when we added the candidate
    to ours (``initial_trustchain_id`` set). The display callbacks may be coroutines.
    """
    pairing = _Pairing(member_credentials, member_name, add_member, initial_trustchain_id, random)
    url = qr.pairing_url(trustchain_api_base_url, pairing.ephemeral.public_key)
    await pairing.open(url)
    expected: str | None = None
    try:
        await _maybe_await(on_display_qr_code(url))
        async with aclosing(pairing.messages()) as messages:
            async for message in messages:
                if message.message == M.INITIATE_HANDSHAKE:
                    if pairing.cipher is not None:
                        raise QRCodeProtocolError("UNEXPECTED_MESSAGE", "a second handshake")
                    peer = message.payload.get("ephemeral_public_key")
                    try:
                        pairing.cipher = qr.SessionCipher.from_ecdh(
                            pairing.ephemeral.private_key, bytes.fromhex(str(peer))
                        )
                    except (ValueError, CryptoError) as exc:
                        raise QRCodeProtocolError(
                            "INVALID_MESSAGE", "the candidate's ephemeral key is invalid"
                        ) from exc
                    expected = qr.random_digits(qr.DIGITS_COUNT, random)
                    await _maybe_await(on_display_digits(expected))
                    await pairing.send_encrypted(
                        M.HANDSHAKE_CHALLENGE, {"digits": qr.DIGITS_COUNT, "connected": False}
                    )
                elif message.message == M.COMPLETE_HANDSHAKE_CHALLENGE:
                    digits = pairing.decrypt(message).get("digits")
                    if pairing.verified or expected is None or digits != expected:
                        await pairing.fail(
                            qr.FailureType.HANDSHAKE_COMPLETION_FAILED, "invalid digits"
                        )
                        raise InvalidDigitsError("invalid digits")
                    pairing.verified = True
                    await pairing.send_encrypted(M.HANDSHAKE_COMPLETION_SUCCEEDED, {})
                finished, trustchain = await pairing.common(message)
                if finished:
                    return trustchain
    finally:
        await pairing.close()
    raise AssertionError("unreachable")  # pragma: no cover - messages() raises on close


async def create_qr_code_candidate_instance(
    *,
    member_credentials: MemberCredentials,
    member_name: str,
    add_member: AddMember,
    scanned_url: str,
    on_request_qr_code_input: Callable[[DigitsRequest], str | Awaitable[str]],
    initial_trustchain_id: str | None = None,
    random: Random = os.urandom,
) -> Trustchain | None:
    """Pair with the host whose QR code was scanned (``scanned_url``).

    ``on_request_qr_code_input`` returns the digits the user read on the host. Returns the
    trustchain we were added to, or None when we added the host to ours.
    """
    try:
        host_key = qr.parse_pairing_url(scanned_url)
    except qr.QRCodeError as exc:
        if exc.legacy_import:
            raise ScannedOldImportQrCode(str(exc)) from exc
        raise ScannedInvalidQrCode(str(exc)) from exc
    pairing = _Pairing(member_credentials, member_name, add_member, initial_trustchain_id, random)
    pairing.cipher = qr.SessionCipher.from_ecdh(pairing.ephemeral.private_key, host_key)
    await pairing.open(scanned_url)
    try:
        await pairing.send(M.INITIATE_HANDSHAKE, {"ephemeral_public_key": pairing.publisher})
        async with aclosing(pairing.messages()) as messages:
            async for message in messages:
                if message.message == M.HANDSHAKE_CHALLENGE:
                    body = pairing.decrypt(message)
                    count = body.get("digits", qr.DIGITS_COUNT)
                    if not isinstance(count, int) or isinstance(count, bool):
                        raise QRCodeProtocolError("INVALID_MESSAGE", "digits must be an integer")
                    request = DigitsRequest(count, bool(body.get("connected")))
                    digits = await _maybe_await(on_request_qr_code_input(request))
                    await pairing.send_encrypted(M.COMPLETE_HANDSHAKE_CHALLENGE, {"digits": digits})
                elif message.message == M.HANDSHAKE_COMPLETION_SUCCEEDED:
                    pairing.decrypt(message)  # proves the host holds the session key
                    pairing.verified = True
                    if initial_trustchain_id:
                        await pairing.send_encrypted(M.TRUSTCHAIN_REQUEST_CREDENTIAL, {})
                    else:
                        await pairing.send_encrypted(
                            M.TRUSTCHAIN_SHARE_CREDENTIAL,
                            {"id": member_credentials.pubkey, "name": member_name},
                        )
                finished, trustchain = await pairing.common(message)
                if finished:
                    return trustchain
    finally:
        await pairing.close()
    raise AssertionError("unreachable")  # pragma: no cover - messages() raises on close


# --- with a TrustchainSDK -------------------------------------------------------------------


def _adder(
    sdk: TrustchainSDK, credentials: MemberCredentials, trustchain: Trustchain | None
) -> AddMember:
    async def add(member: TrustchainMember) -> Trustchain:
        if trustchain is None:  # pragma: no cover - the protocol refuses before this
            raise NoTrustchainInitialized("no trustchain to add a member to")
        await sdk.add_member(trustchain, credentials, member)
        return trustchain

    return add


async def pair_as_host(
    sdk: TrustchainSDK,
    credentials: MemberCredentials,
    trustchain: Trustchain | None,
    *,
    on_display_qr_code: Callable[[str], Any],
    on_display_digits: Callable[[str], Any],
) -> Trustchain:
    """Show a QR code; whichever side lacks a trustchain joins the other's. Returns ours."""
    received = await create_qr_code_host_instance(
        trustchain_api_base_url=sdk.api_base_url,
        on_display_qr_code=on_display_qr_code,
        on_display_digits=on_display_digits,
        add_member=_adder(sdk, credentials, trustchain),
        member_credentials=credentials,
        member_name=sdk.name,
        initial_trustchain_id=trustchain.root_id if trustchain else None,
    )
    result = received or trustchain
    if result is None:  # pragma: no cover - the protocol ends with a trustchain on one side
        raise NoTrustchainInitialized("pairing ended without a trustchain")
    return result


async def pair_as_candidate(
    sdk: TrustchainSDK,
    credentials: MemberCredentials,
    trustchain: Trustchain | None,
    *,
    scanned_url: str,
    on_request_qr_code_input: Callable[[DigitsRequest], str | Awaitable[str]],
) -> Trustchain:
    """Pair with a scanned QR code; whichever side lacks a trustchain joins the other's."""
    received = await create_qr_code_candidate_instance(
        member_credentials=credentials,
        member_name=sdk.name,
        add_member=_adder(sdk, credentials, trustchain),
        scanned_url=scanned_url,
        on_request_qr_code_input=on_request_qr_code_input,
        initial_trustchain_id=trustchain.root_id if trustchain else None,
    )
    result = received or trustchain
    if result is None:  # pragma: no cover
        raise NoTrustchainInitialized("pairing ended without a trustchain")
    return result
