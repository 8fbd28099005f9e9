"""QR-code pairing, host and candidate (docs/protocol.md, "QR pairing messages").

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

The protocol itself (which message may come when, the peer binding, the session key and the
digit check) is the sans-I/O :class:`~ledgersync.protocol.pairing.PairingSession`; this module
only moves its frames over the websocket and runs the callbacks (display, typing, adding a
member). Strict as Ledger's newest pairing (ledger-live ``qrcode/protocol.ts`` @e8434eb2):
the first peer is bound for the session, duplicate, out-of-order or foreign messages raise
:class:`QRCodeProtocolError`, credentials are only exchanged after the digits were checked,
and frames the relay echoes back (our own publisher) are ignored.
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

from ..protocol import pairing, qr
from ..protocol.crypto import Random
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
from .http import check_base_url
from .trustchain import TrustchainSDK

log = logging.getLogger(__name__)

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
    """One side of a pairing session: moves frames between the socket and the sans-I/O
    :class:`~ledgersync.protocol.pairing.PairingSession`, and runs the callbacks."""

    def __init__(
        self,
        session: pairing.PairingSession,
        credentials: MemberCredentials,
        member_name: str,
        add_member: AddMember,
        initial_trustchain_id: str | None,
    ) -> None:
        self.session = session
        self.credentials = credentials
        self.member_name = member_name
        self.add_member = add_member
        self.initial_trustchain_id = initial_trustchain_id
        self.ws: ClientConnection | None = None
        self.started = time.monotonic()

    async def open(self, url: str) -> None:
        try:
            self.ws = await connect(url, open_timeout=30)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise NetworkError(f"cannot open the pairing socket {url}: {exc}", url=url) from exc

    def frame(self, event: pairing.Event) -> str:
        """The frame for ``event``, if the protocol allows sending it now."""
        try:
            return self.session.send(event)
        except pairing.PairingProtocolError as exc:
            raise QRCodeProtocolError(exc.kind, str(exc)) from exc

    async def write(self, frame: str) -> None:
        assert self.ws is not None
        try:
            await self.ws.send(frame)
        except ConnectionClosed as exc:
            raise QRCodeWSClosed(time=time.monotonic() - self.started) from exc

    async def send(self, event: pairing.Event) -> None:
        await self.write(self.frame(event))

    async def fail(self, kind: qr.FailureType, message: str) -> None:
        await self.send(pairing.Failure(kind.value, message))

    async def events(self) -> AsyncGenerator[pairing.Event, None]:
        """The peer's messages, checked and decrypted by the session, until the socket closes."""
        assert self.ws is not None
        try:
            async for frame in self.ws:
                try:
                    event = self.session.receive(frame)
                except qr.QRDecryptionError as exc:
                    raise InvalidEncryptionKeyError("data can't be decrypted") from exc
                except pairing.PairingProtocolError as exc:
                    raise QRCodeProtocolError(exc.kind, str(exc)) from exc
                if event is not None:
                    yield event
        except ConnectionClosed:
            pass
        raise QRCodeWSClosed(time=time.monotonic() - self.started)

    def own_credential(self) -> pairing.ShareCredential:
        return pairing.ShareCredential(self.credentials.pubkey, self.member_name)

    async def common(self, event: pairing.Event) -> tuple[bool, Trustchain | None]:
        """The credential exchange, the same for both roles; returns (finished, trustchain
        received)."""
        if isinstance(event, pairing.ShareCredential):
            if not self.initial_trustchain_id:
                await self.fail(
                    qr.FailureType.UNEXPECTED_SHARE_CREDENTIAL, "unexpected share credential"
                )
                raise NoTrustchainInitialized("unexpected share credential")
            try:
                member = TrustchainMember.from_json(
                    {"id": event.id, "name": event.name, "permissions": OWNER}
                )
            except InvalidArgument as exc:
                raise QRCodeProtocolError("INVALID_MESSAGE", f"shared credential: {exc}") from exc
            trustchain = await self.add_member(member)
            await self.send(pairing.AddedMember(trustchain.to_json()))
            return True, None
        if isinstance(event, pairing.RequestCredential):
            if self.initial_trustchain_id:
                await self.fail(
                    qr.FailureType.UNEXPECTED_REQUEST_CREDENTIAL, self.initial_trustchain_id
                )
                raise TrustchainAlreadyInitialized(self.initial_trustchain_id)
            await self.send(self.own_credential())
            return False, None
        if isinstance(event, pairing.AddedMember):
            try:
                return True, Trustchain.from_json(event.trustchain)
            except InvalidArgument as exc:
                raise QRCodeProtocolError("INVALID_MESSAGE", f"trustchain: {exc}") from exc
        if isinstance(event, pairing.Failure):
            raise failure_error({"type": event.type, "message": event.message})
        return False, None

    async def close(self) -> None:
        self.session.abort()
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
    base_url = check_base_url(trustchain_api_base_url, "Key Ring API base URL")
    session = pairing.PairingSession.host(random=random)
    side = _Pairing(session, member_credentials, member_name, add_member, initial_trustchain_id)
    url = qr.pairing_url(base_url, session.public_key)
    await side.open(url)
    try:
        await _maybe_await(on_display_qr_code(url))
        async with aclosing(side.events()) as events:
            async for event in events:
                if isinstance(event, pairing.InitiateHandshake):
                    challenge = pairing.HandshakeChallenge(qr.DIGITS_COUNT, connected=False)
                    frame = side.frame(challenge)  # the session draws the digits
                    assert session.digits is not None
                    await _maybe_await(on_display_digits(session.digits))
                    await side.write(frame)
                elif isinstance(event, pairing.CompleteHandshakeChallenge):
                    if not event.correct:
                        await side.fail(
                            qr.FailureType.HANDSHAKE_COMPLETION_FAILED, "invalid digits"
                        )
                        raise InvalidDigitsError("invalid digits")
                    await side.send(pairing.HandshakeCompletionSucceeded())
                else:
                    finished, trustchain = await side.common(event)
                    if finished:
                        return trustchain
    finally:
        await side.close()
    raise AssertionError("unreachable")  # pragma: no cover - events() raises on close


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
    session = pairing.PairingSession.candidate(host_key, random=random)
    side = _Pairing(session, member_credentials, member_name, add_member, initial_trustchain_id)
    await side.open(scanned_url)
    try:
        await side.send(pairing.InitiateHandshake(session.public_key))
        async with aclosing(side.events()) as events:
            async for event in events:
                if isinstance(event, pairing.HandshakeChallenge):
                    request = DigitsRequest(event.digits, event.connected)
                    digits = await _maybe_await(on_request_qr_code_input(request))
                    await side.send(pairing.CompleteHandshakeChallenge(str(digits)))
                elif isinstance(event, pairing.HandshakeCompletionSucceeded):
                    if initial_trustchain_id:
                        await side.send(pairing.RequestCredential())
                    else:
                        await side.send(side.own_credential())
                else:
                    finished, trustchain = await side.common(event)
                    if finished:
                        return trustchain
    finally:
        await side.close()
    raise AssertionError("unreachable")  # pragma: no cover - events() raises on close


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
