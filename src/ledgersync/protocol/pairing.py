"""QR pairing as a sans-I/O state machine, for both roles.

See docs/protocol.md, "QR pairing messages". In the spirit of h11's connection state machine:
a :class:`PairingSession` is given the frames that arrive (:meth:`~PairingSession.receive`)
and asked for the frames to send (:meth:`~PairingSession.send`); it returns typed, decrypted
events and encrypted frames, and never touches a socket. Every allowed transition is in
:data:`TRANSITIONS`; anything else raises :class:`PairingProtocolError` and ends the session.

The table is the host's view; the candidate runs the same table with every direction flipped
(the handshake is symmetrical), as Ledger's newest pairing does (ledger-live
``libs/ledger-key-ring-protocol/src/qrcode/protocol.ts`` @e8434eb2, PR #22116). Beyond the
table, the session:

* binds the peer: the host takes the first ``InitiateHandshake``'s publisher as its peer, the
  candidate the host key of the scanned URL; a frame from any other publisher is refused, and
  a frame with our own publisher (a relay echoing it) is ignored;
* holds the session key (set once: by the candidate from the URL, by the host from the
  handshake) and the host's check digits; ``HandshakeCompletionSucceeded`` cannot be sent
  unless the digits typed on the candidate matched;
* takes a ``Failure`` (clear, unauthenticated) only where the peer may send one, and lets
  this side send one from any state after the first message.

No wire change: the frames are those of :mod:`.qr`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from . import qr
from .crypto import KeyPair, Random
from .errors import CryptoError, ProtocolError

M = qr.MessageType


class Role(StrEnum):
    HOST = "host"
    CANDIDATE = "candidate"


class Direction(StrEnum):
    SEND = "send"
    RECEIVE = "recv"


class State(StrEnum):
    """Each state is named after the last message exchanged to reach it."""

    INIT = "init"
    INITIATED = "initiated"
    CHALLENGED = "challenged"
    PIN_EXCHANGED = "pin-exchanged"
    AUTHENTICATED = "authenticated"
    CREDENTIAL_SHARED = "credential-shared"
    CREDENTIAL_REQUESTED = "credential-requested"
    CREDENTIAL_RETURNED = "credential-returned"
    FINISHED = "finished"


S, D = State, Direction

#: Every allowed transition, as the host sees it: (state, direction, message) → next state.
#: The candidate uses the same rows with the direction flipped.
TRANSITIONS: Mapping[tuple[State, Direction, qr.MessageType], State] = {
    (S.INIT, D.RECEIVE, M.INITIATE_HANDSHAKE): S.INITIATED,
    (S.INITIATED, D.SEND, M.HANDSHAKE_CHALLENGE): S.CHALLENGED,
    (S.CHALLENGED, D.RECEIVE, M.COMPLETE_HANDSHAKE_CHALLENGE): S.PIN_EXCHANGED,
    (S.PIN_EXCHANGED, D.SEND, M.HANDSHAKE_COMPLETION_SUCCEEDED): S.AUTHENTICATED,
    (S.AUTHENTICATED, D.RECEIVE, M.TRUSTCHAIN_SHARE_CREDENTIAL): S.CREDENTIAL_SHARED,
    (S.AUTHENTICATED, D.RECEIVE, M.TRUSTCHAIN_REQUEST_CREDENTIAL): S.CREDENTIAL_REQUESTED,
    (S.CREDENTIAL_REQUESTED, D.SEND, M.TRUSTCHAIN_SHARE_CREDENTIAL): S.CREDENTIAL_RETURNED,
    (S.CREDENTIAL_SHARED, D.SEND, M.TRUSTCHAIN_ADDED_MEMBER): S.FINISHED,
    (S.CREDENTIAL_RETURNED, D.RECEIVE, M.TRUSTCHAIN_ADDED_MEMBER): S.FINISHED,
}

#: Where a peer's ``Failure`` is taken (it is neither encrypted nor authenticated): the
#: states in which the other side has something to refuse.
FAILURE_STATES = frozenset(
    {
        S.PIN_EXCHANGED,
        S.AUTHENTICATED,
        S.CREDENTIAL_SHARED,
        S.CREDENTIAL_REQUESTED,
        S.CREDENTIAL_RETURNED,
    }
)


def _flip(direction: Direction) -> Direction:
    return D.SEND if direction is D.RECEIVE else D.RECEIVE


def transitions(role: Role) -> dict[tuple[State, Direction, qr.MessageType], State]:
    """The table as ``role`` runs it."""
    if role is Role.HOST:
        return dict(TRANSITIONS)
    return {(state, _flip(d), message): to for (state, d, message), to in TRANSITIONS.items()}


class PairingProtocolError(ProtocolError):
    """A frame or an action the pairing protocol does not allow here (``kind`` is
    ``UNEXPECTED_MESSAGE`` or ``INVALID_MESSAGE``); the session is finished."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- events: the messages, typed and decrypted ------------------------------------------------


@dataclass(frozen=True, slots=True)
class InitiateHandshake:
    ephemeral_public_key: bytes


@dataclass(frozen=True, slots=True)
class HandshakeChallenge:
    digits: int = qr.DIGITS_COUNT
    connected: bool = False


@dataclass(frozen=True, slots=True)
class CompleteHandshakeChallenge:
    digits: str
    #: On the host: whether ``digits`` are the ones it showed.
    correct: bool = False


@dataclass(frozen=True, slots=True)
class HandshakeCompletionSucceeded:
    pass


@dataclass(frozen=True, slots=True)
class ShareCredential:
    """``TrustchainShareCredential``: the sender's member key (hex) and name."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class RequestCredential:
    """``TrustchainRequestCredential``."""


@dataclass(frozen=True, slots=True)
class AddedMember:
    """``TrustchainAddedMember``: ``{"rootId", "walletSyncEncryptionKey", "applicationPath"}``."""

    trustchain: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failure:
    type: str
    message: str


Event = (
    InitiateHandshake
    | HandshakeChallenge
    | CompleteHandshakeChallenge
    | HandshakeCompletionSucceeded
    | ShareCredential
    | RequestCredential
    | AddedMember
    | Failure
)

_MESSAGE_OF: dict[type[Any], qr.MessageType] = {
    InitiateHandshake: M.INITIATE_HANDSHAKE,
    HandshakeChallenge: M.HANDSHAKE_CHALLENGE,
    CompleteHandshakeChallenge: M.COMPLETE_HANDSHAKE_CHALLENGE,
    HandshakeCompletionSucceeded: M.HANDSHAKE_COMPLETION_SUCCEEDED,
    ShareCredential: M.TRUSTCHAIN_SHARE_CREDENTIAL,
    RequestCredential: M.TRUSTCHAIN_REQUEST_CREDENTIAL,
    AddedMember: M.TRUSTCHAIN_ADDED_MEMBER,
    Failure: M.FAILURE,
}


class PairingSession:
    """One side of one pairing session.

    ``PairingSession.host(random=…)`` draws the host's ephemeral key (its public key goes in
    the QR code: :attr:`public_key`); ``PairingSession.candidate(host_key, random=…)`` is
    built from the scanned URL's key. Then ``receive(frame)`` for every frame that arrives,
    ``send(event)`` for every frame to send.
    """

    def __init__(self, role: Role, *, host_key: bytes | None, random: Random) -> None:
        self.role = role
        self._random = random
        self._table = transitions(role)
        self.ephemeral = KeyPair.generate(random)
        self.state = State.INIT
        self._cipher: qr.SessionCipher | None = None
        self._peer: str | None = None
        self._expected_digits: str | None = None
        self._digits_ok = False
        #: On the host, once ``HandshakeChallenge`` was sent: the digits to show the user.
        self.digits: str | None = None
        if role is Role.CANDIDATE:
            assert host_key is not None
            self._peer = host_key.hex()
            self._cipher = qr.SessionCipher.from_ecdh(self.ephemeral.private_key, host_key)

    @classmethod
    def host(cls, *, random: Random = os.urandom) -> PairingSession:
        return cls(Role.HOST, host_key=None, random=random)

    @classmethod
    def candidate(cls, host_key: bytes, *, random: Random = os.urandom) -> PairingSession:
        return cls(Role.CANDIDATE, host_key=host_key, random=random)

    @property
    def public_key(self) -> bytes:
        return self.ephemeral.public_key

    @property
    def publisher(self) -> str:
        return self.ephemeral.public_key.hex()

    @property
    def finished(self) -> bool:
        return self.state is State.FINISHED

    def abort(self) -> None:
        """End the session: nothing is received or sent afterwards."""
        self.state = State.FINISHED

    # --- receiving -----------------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> Event | None:
        """The event a frame from the relay carries; None for our own frame echoed back.

        Raises :class:`PairingProtocolError` (the session is then finished) for a frame that
        is not a pairing message, from another peer, or not allowed in the current state, and
        :class:`~.qr.QRDecryptionError` for a payload the session key does not open.
        """
        try:
            return self._receive(frame)
        except (ProtocolError, CryptoError):
            self.abort()
            raise

    def _receive(self, frame: str | bytes) -> Event | None:
        try:
            message = qr.parse_message(frame)
        except qr.QRFrameError as exc:
            raise PairingProtocolError("INVALID_MESSAGE", str(exc)) from exc
        publisher = message.publisher.lower()
        if publisher == self.publisher:
            return None  # a relay echoing our own frame
        if self.state is State.FINISHED:
            raise PairingProtocolError("UNEXPECTED_MESSAGE", f"{message.message} after the end")
        if self._peer is not None and publisher != self._peer:
            raise PairingProtocolError(
                "UNEXPECTED_MESSAGE", "message publisher does not match the bound peer"
            )
        try:
            kind = qr.MessageType(message.message)
        except ValueError as exc:
            raise PairingProtocolError(
                "UNEXPECTED_MESSAGE", f"unexpected message {message.message!r}"
            ) from exc
        if kind is M.FAILURE:
            if self.state not in FAILURE_STATES:
                raise PairingProtocolError(
                    "UNEXPECTED_MESSAGE", f"unexpected Failure in state {self.state}"
                )
            self.state = State.FINISHED
            return Failure(_text(message.payload, "type"), _text(message.payload, "message"))
        following = self._table.get((self.state, D.RECEIVE, kind))
        if following is None:
            raise PairingProtocolError(
                "UNEXPECTED_MESSAGE", f"unexpected recv of {kind} in state {self.state}"
            )
        event = self._event(kind, message)
        self._peer = publisher  # the first peer is bound for the session
        self.state = following
        return event

    def _event(self, kind: qr.MessageType, message: qr.Message) -> Event:
        if kind is M.INITIATE_HANDSHAKE:
            return self._handshake(message.payload)
        body = self._decrypt(message)
        if kind is M.HANDSHAKE_CHALLENGE:
            count = body.get("digits", qr.DIGITS_COUNT)
            if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 16:
                raise PairingProtocolError("INVALID_MESSAGE", "digits must be a small integer")
            return HandshakeChallenge(count, bool(body.get("connected")))
        if kind is M.COMPLETE_HANDSHAKE_CHALLENGE:
            digits = body.get("digits")
            typed = digits if isinstance(digits, str) else ""
            self._digits_ok = self._expected_digits is not None and typed == self._expected_digits
            return CompleteHandshakeChallenge(typed, self._digits_ok)
        if kind is M.HANDSHAKE_COMPLETION_SUCCEEDED:
            return HandshakeCompletionSucceeded()
        if kind is M.TRUSTCHAIN_SHARE_CREDENTIAL:
            member, name = body.get("id"), body.get("name")
            if not isinstance(member, str) or not isinstance(name, str):
                raise PairingProtocolError("INVALID_MESSAGE", "shared credential: id and name")
            return ShareCredential(member, name)
        if kind is M.TRUSTCHAIN_REQUEST_CREDENTIAL:
            return RequestCredential()
        trustchain = body.get("trustchain")
        if not isinstance(trustchain, dict):
            raise PairingProtocolError("INVALID_MESSAGE", "trustchain must be an object")
        return AddedMember(trustchain)

    def _handshake(self, payload: dict[str, Any]) -> InitiateHandshake:
        peer = payload.get("ephemeral_public_key")
        try:
            key = bytes.fromhex(peer) if isinstance(peer, str) else b""
            self._cipher = qr.SessionCipher.from_ecdh(self.ephemeral.private_key, key)
        except (ValueError, CryptoError) as exc:
            raise PairingProtocolError(
                "INVALID_MESSAGE", "the candidate's ephemeral key is invalid"
            ) from exc
        return InitiateHandshake(key)

    def _decrypt(self, message: qr.Message) -> dict[str, Any]:
        assert self._cipher is not None  # set before any encrypted message is allowed
        try:
            return self._cipher.decrypt_message(message)
        except qr.QRFrameError as exc:
            raise PairingProtocolError("INVALID_MESSAGE", str(exc)) from exc

    # --- sending -------------------------------------------------------------------------------

    def send(self, event: Event) -> str:
        """The frame to send for ``event``, after checking this side may send it now.

        For the host's ``HandshakeChallenge`` the check digits are drawn here (then read
        :attr:`digits`); ``HandshakeCompletionSucceeded`` requires the right digits; a
        ``Failure`` ends the session.
        """
        kind = _MESSAGE_OF[type(event)]
        if self.state is State.FINISHED:
            raise PairingProtocolError("UNEXPECTED_MESSAGE", f"{kind} after the end")
        if isinstance(event, Failure):
            if self.state is State.INIT:
                raise PairingProtocolError("UNEXPECTED_MESSAGE", "Failure before any message")
            self.state = State.FINISHED
            return self._frame(kind, {"type": event.type, "message": event.message})
        following = self._table.get((self.state, D.SEND, kind))
        if following is None:
            raise PairingProtocolError(
                "UNEXPECTED_MESSAGE", f"unexpected send of {kind} in state {self.state}"
            )
        if isinstance(event, HandshakeCompletionSucceeded) and not self._digits_ok:
            raise PairingProtocolError("UNEXPECTED_MESSAGE", "the digits were not verified")
        payload = self._payload(event)
        self.state = following
        if kind is M.INITIATE_HANDSHAKE:
            return self._frame(kind, payload)
        assert self._cipher is not None
        return self._frame(kind, self._cipher.encrypt_payload(payload, self._random))

    def _payload(self, event: Event) -> dict[str, Any]:
        if isinstance(event, InitiateHandshake):
            return {"ephemeral_public_key": self.publisher}
        if isinstance(event, HandshakeChallenge):
            self._expected_digits = self.digits = qr.random_digits(event.digits, self._random)
            return {"digits": event.digits, "connected": event.connected}
        if isinstance(event, CompleteHandshakeChallenge):
            return {"digits": event.digits}
        if isinstance(event, ShareCredential):
            return {"id": event.id, "name": event.name}
        if isinstance(event, AddedMember):
            return {"trustchain": event.trustchain}
        return {}

    def _frame(self, kind: qr.MessageType, payload: dict[str, Any]) -> str:
        return qr.Message(self.publisher, kind.value, payload).encode()


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name, "")
    return value if isinstance(value, str) else str(value)
