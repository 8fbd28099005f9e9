"""The QR pairing state machine (``ledgersync.protocol.pairing``), without sockets.

The cases of Ledger's ``libs/ledger-key-ring-protocol/src/qrcode/protocol.test.ts``
(ledger-live @70c57d43, for ``protocol.ts`` @e8434eb2, PR #22116), written again for our
session, which also carries the frames: whole sessions between two machines, peer binding,
the digit check and the refusals.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledgersync.protocol import qr
from ledgersync.protocol.crypto import KeyPair
from ledgersync.protocol.pairing import (
    FAILURE_STATES,
    TRANSITIONS,
    AddedMember,
    CompleteHandshakeChallenge,
    Direction,
    Failure,
    HandshakeChallenge,
    HandshakeCompletionSucceeded,
    InitiateHandshake,
    PairingProtocolError,
    PairingSession,
    RequestCredential,
    Role,
    ShareCredential,
    State,
    transitions,
)

TRUSTCHAIN = {
    "rootId": "00" + "ab" * 32,
    "walletSyncEncryptionKey": "11" * 32,
    "applicationPath": "m/0'/16'/0'",
}


def pair() -> tuple[PairingSession, PairingSession]:
    host = PairingSession.host()
    return host, PairingSession.candidate(host.public_key)


def relay(sender: PairingSession, receiver: PairingSession, event: Any) -> Any:
    """``sender`` sends ``event``; what ``receiver`` makes of the frame."""
    return receiver.receive(sender.send(event))


def handshake(host: PairingSession, candidate: PairingSession) -> None:
    assert relay(candidate, host, InitiateHandshake(candidate.public_key)) == InitiateHandshake(
        candidate.public_key
    )
    assert relay(host, candidate, HandshakeChallenge()) == HandshakeChallenge(3, False)
    assert host.digits is not None and len(host.digits) == 3
    typed = relay(candidate, host, CompleteHandshakeChallenge(host.digits))
    assert typed == CompleteHandshakeChallenge(host.digits, correct=True)
    assert relay(host, candidate, HandshakeCompletionSucceeded()) == HandshakeCompletionSucceeded()
    assert host.state is candidate.state is State.AUTHENTICATED


def test_the_host_adds_the_candidate() -> None:
    host, candidate = pair()
    handshake(host, candidate)
    shared = relay(candidate, host, ShareCredential("02" + "cd" * 32, "Phone"))
    assert shared == ShareCredential("02" + "cd" * 32, "Phone")
    assert relay(host, candidate, AddedMember(TRUSTCHAIN)) == AddedMember(TRUSTCHAIN)
    assert host.finished and candidate.finished


def test_the_candidate_adds_the_host() -> None:
    host, candidate = pair()
    handshake(host, candidate)
    assert relay(candidate, host, RequestCredential()) == RequestCredential()
    relay(host, candidate, ShareCredential("03" + "ef" * 32, "Desktop"))
    relay(candidate, host, AddedMember(TRUSTCHAIN))
    assert host.finished and candidate.finished


def test_the_table_is_one_table_flipped_for_the_candidate() -> None:
    host, candidate = transitions(Role.HOST), transitions(Role.CANDIDATE)
    assert host == dict(TRANSITIONS) and len(candidate) == len(host)
    for (state, direction, message), following in host.items():
        flipped = Direction.SEND if direction is Direction.RECEIVE else Direction.RECEIVE
        assert candidate[(state, flipped, message)] is following
    assert State.INIT not in FAILURE_STATES and State.CHALLENGED not in FAILURE_STATES


def test_credentials_before_the_handshake_are_refused() -> None:
    host, candidate = pair()
    with pytest.raises(PairingProtocolError, match="unexpected send"):
        candidate.send(ShareCredential("02" + "cd" * 32, "Phone"))
    attacker = PairingSession.candidate(host.public_key)
    frame = qr.Message(attacker.publisher, "TrustchainShareCredential", {"encrypted": "AA"})
    with pytest.raises(PairingProtocolError, match="in state init") as info:
        host.receive(frame.encode())
    assert info.value.kind == "UNEXPECTED_MESSAGE"
    assert host.finished  # an error ends the session


def test_credentials_before_the_digits_are_refused() -> None:
    host, candidate = pair()
    relay(candidate, host, InitiateHandshake(candidate.public_key))
    relay(host, candidate, HandshakeChallenge())
    # A candidate skipping the digits: its machine refuses; a hand-made frame too.
    with pytest.raises(PairingProtocolError):
        candidate.send(ShareCredential("02" + "cd" * 32, "Phone"))
    cipher = qr.SessionCipher.from_ecdh(candidate.ephemeral.private_key, host.public_key)
    payload = cipher.encrypt_payload({"id": "02" + "cd" * 32, "name": "Phone"})
    frame = qr.Message(candidate.publisher, "TrustchainShareCredential", payload).encode()
    with pytest.raises(PairingProtocolError, match="in state challenged"):
        host.receive(frame)


def test_a_trustchain_before_the_digits_is_refused_by_the_candidate() -> None:
    host, candidate = pair()
    candidate.send(InitiateHandshake(candidate.public_key))
    cipher = qr.SessionCipher.from_ecdh(host.ephemeral.private_key, candidate.public_key)
    frame = qr.Message(
        host.publisher, "TrustchainAddedMember", cipher.encrypt_payload({"trustchain": TRUSTCHAIN})
    )
    with pytest.raises(PairingProtocolError, match="TrustchainAddedMember in state initiated"):
        candidate.receive(frame.encode())


def test_duplicates_are_refused() -> None:
    host, candidate = pair()
    first = candidate.send(InitiateHandshake(candidate.public_key))
    host.receive(first)
    with pytest.raises(PairingProtocolError, match="InitiateHandshake in state initiated"):
        host.receive(first)

    host, candidate = pair()
    handshake(host, candidate)
    cipher = qr.SessionCipher.from_ecdh(candidate.ephemeral.private_key, host.public_key)
    again = qr.Message(
        candidate.publisher,
        "CompleteHandshakeChallenge",
        cipher.encrypt_payload({"digits": host.digits}),
    )
    with pytest.raises(PairingProtocolError, match="in state authenticated"):
        host.receive(again.encode())

    host, candidate = pair()
    relay(candidate, host, InitiateHandshake(candidate.public_key))
    challenge = host.send(HandshakeChallenge())
    candidate.receive(challenge)
    candidate.send(CompleteHandshakeChallenge("000"))
    with pytest.raises(PairingProtocolError, match="unexpected send"):
        candidate.send(CompleteHandshakeChallenge("000"))
    with pytest.raises(PairingProtocolError, match="HandshakeChallenge in state pin-exchanged"):
        candidate.receive(challenge)


def test_a_message_of_the_other_role_is_refused() -> None:
    host, candidate = pair()
    relay(candidate, host, InitiateHandshake(candidate.public_key))
    cipher = qr.SessionCipher.from_ecdh(candidate.ephemeral.private_key, host.public_key)
    frame = qr.Message(
        candidate.publisher, "HandshakeChallenge", cipher.encrypt_payload({"digits": 3})
    )
    with pytest.raises(PairingProtocolError, match="recv of HandshakeChallenge"):
        host.receive(frame.encode())


def test_wrong_digits_cannot_be_answered_with_success() -> None:
    host, candidate = pair()
    relay(candidate, host, InitiateHandshake(candidate.public_key))
    relay(host, candidate, HandshakeChallenge())
    assert host.digits is not None
    wrong = str((int(host.digits) + 1) % 1000).zfill(3)
    assert relay(candidate, host, CompleteHandshakeChallenge(wrong)).correct is False
    with pytest.raises(PairingProtocolError, match="not verified"):
        host.send(HandshakeCompletionSucceeded())
    # The host refuses with a Failure, which the candidate takes where it is allowed.
    failure = Failure("HANDSHAKE_COMPLETION_FAILED", "invalid digits")
    host, candidate = pair()
    relay(candidate, host, InitiateHandshake(candidate.public_key))
    relay(host, candidate, HandshakeChallenge())
    relay(candidate, host, CompleteHandshakeChallenge("xyz"))
    assert relay(host, candidate, failure) == failure
    assert host.finished and candidate.finished


def test_a_failure_is_taken_only_where_one_can_come() -> None:
    host, candidate = pair()
    candidate.send(InitiateHandshake(candidate.public_key))
    frame = qr.Message(host.publisher, "Failure", {"type": "X", "message": "no"}).encode()
    with pytest.raises(PairingProtocolError, match="unexpected Failure in state initiated"):
        candidate.receive(frame)

    host, candidate = pair()
    handshake(host, candidate)
    relay(candidate, host, ShareCredential("02" + "cd" * 32, "Phone"))
    relay(host, candidate, AddedMember(TRUSTCHAIN))
    late = qr.Message(candidate.publisher, "Failure", {"type": "X", "message": "late"})
    with pytest.raises(PairingProtocolError, match="after the end"):
        host.receive(late.encode())
    with pytest.raises(PairingProtocolError, match="after the end"):
        host.send(Failure("X", "late"))


def test_the_first_peer_is_bound() -> None:
    host, candidate = pair()
    relay(candidate, host, InitiateHandshake(candidate.public_key))
    stranger = PairingSession.candidate(host.public_key)
    frame = stranger.send(InitiateHandshake(stranger.public_key))
    with pytest.raises(PairingProtocolError, match="bound peer"):
        host.receive(frame)

    # The candidate is bound to the scanned host key from the start.
    host, candidate = pair()
    candidate.send(InitiateHandshake(candidate.public_key))
    impostor = KeyPair.generate()
    cipher = qr.SessionCipher.from_ecdh(impostor.private_key, candidate.public_key)
    forged = qr.Message(
        impostor.public_key.hex(), "HandshakeChallenge", cipher.encrypt_payload({"digits": 3})
    )
    with pytest.raises(PairingProtocolError, match="bound peer"):
        candidate.receive(forged.encode())


def test_the_peer_publisher_is_compared_without_case() -> None:
    host, candidate = pair()
    frame = json.loads(candidate.send(InitiateHandshake(candidate.public_key)))
    host.receive(json.dumps(frame))
    challenge = json.loads(host.send(HandshakeChallenge()))
    challenge["publisher"] = challenge["publisher"].upper()
    assert candidate.receive(json.dumps(challenge)) == HandshakeChallenge()


def test_our_own_frames_echoed_are_ignored() -> None:
    _, candidate = pair()
    frame = candidate.send(InitiateHandshake(candidate.public_key))
    assert candidate.receive(frame) is None
    assert candidate.state is State.INITIATED


def test_bad_frames_and_payloads_are_invalid_messages() -> None:
    host, candidate = pair()
    with pytest.raises(PairingProtocolError) as info:
        host.receive("not json")
    assert info.value.kind == "INVALID_MESSAGE"

    host, candidate = pair()
    bad_key = qr.Message(candidate.publisher, "InitiateHandshake", {"ephemeral_public_key": "zz"})
    with pytest.raises(PairingProtocolError, match="ephemeral key"):
        host.receive(bad_key.encode())

    host, candidate = pair()
    relay(candidate, host, InitiateHandshake(candidate.public_key))
    garbage = qr.Message(host.publisher, "HandshakeChallenge", {"encrypted": "AAAA"})
    with pytest.raises(qr.QRDecryptionError):
        candidate.receive(garbage.encode())
    assert candidate.finished

    host, candidate = pair()
    relay(candidate, host, InitiateHandshake(candidate.public_key))
    cipher = qr.SessionCipher.from_ecdh(host.ephemeral.private_key, candidate.public_key)
    weird = qr.Message(
        host.publisher, "HandshakeChallenge", cipher.encrypt_payload({"digits": True})
    )
    with pytest.raises(PairingProtocolError, match="digits"):
        candidate.receive(weird.encode())

    host, candidate = pair()
    unknown = qr.Message(candidate.publisher, "Hello", {})
    with pytest.raises(PairingProtocolError, match="unexpected message 'Hello'"):
        host.receive(unknown.encode())


def test_frames_are_the_wire_frames() -> None:
    """No wire change: the frames are version-1 messages, encrypted but for the handshake."""
    host, candidate = pair()
    first = json.loads(candidate.send(InitiateHandshake(candidate.public_key)))
    assert first == {
        "version": 1,
        "publisher": candidate.publisher,
        "message": "InitiateHandshake",
        "payload": {"ephemeral_public_key": candidate.publisher},
    }
    host.receive(json.dumps(first))
    challenge = qr.parse_message(host.send(HandshakeChallenge()))
    assert set(challenge.payload) == {"encrypted"}
    cipher = qr.SessionCipher.from_ecdh(candidate.ephemeral.private_key, host.public_key)
    assert cipher.decrypt_message(challenge) == {"digits": 3, "connected": False}
