"""Ledger's JavaScript ``ApduDevice`` driving ledgersync's emulator of the Ledger Sync app.

The APDUs Ledger's own client code sends (INIT, PARSE_STREAM, SIGN_BLOCK, SET_TRUSTED_MEMBER,
GET_SEED_ID) cross a bridge to :class:`ledgersync.device.emulator.Emulator`; the trustchain
Ledger's code assembles from the emulator's answers (trusted properties decrypted on the JS
side) must resolve on both sides with the same keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ledgersync.device.approval import ApprovalKind, ApprovalRequest
from ledgersync.device.emulator import Emulator
from ledgersync.device.identity import DeviceIdentity, generate_mnemonic
from ledgersync.protocol import KeyPair, parse_path, read_key, resolve_tree
from ledgersync.protocol.challenge import (
    DeviceAttestation,
    PubKeyCredential,
    SeedIdResponse,
    build_challenge,
    decode_attestation,
)
from ledgersync.testing import LocalServer

from .js import JsError, JsInstance

APP_PATH = "m/0'/16'/0'"


def emulator(approvals: list[ApprovalRequest]) -> tuple[Emulator, DeviceIdentity]:
    identity = DeviceIdentity.from_mnemonic(generate_mnemonic())

    def approve(request: ApprovalRequest) -> bool:
        approvals.append(request)
        return True

    return Emulator(identity, approver=approve), identity


def test_ledger_apdu_device_builds_a_trustchain_on_our_emulator(js_offline: JsInstance) -> None:
    approvals: list[ApprovalRequest] = []
    device, identity = emulator(approvals)
    alice, bob = KeyPair.generate(), KeyPair.generate()
    pending = js_offline.start(
        "protocol.createTrustchain",
        apdu=True,
        members=[
            {"pubkey": alice.public_key.hex(), "name": "Alice"},
            {"pubkey": bob.public_key.hex(), "name": "Bob"},
        ],
        close=True,
    )
    built = js_offline.serve_apdus(pending, device.exchange)
    assert js_offline.apdu_count > 10

    tree = resolve_tree([bytes.fromhex(s) for s in built["streams"].values()])
    assert tree.trustchain_id == built["rootId"]
    assert tree.root.creator == identity.public_key
    app = tree.get(parse_path(APP_PATH))
    assert app is not None and app.closed
    assert [(m.public_key, m.name) for m in app.added_members] == [
        (alice.public_key, "Alice"),
        (bob.public_key, "Bob"),
    ]
    seen = js_offline.call(
        "protocol.resolveTrustchain",
        streams=built["streams"],
        readers=[alice.private_key.hex(), bob.private_key.hex()],
    )
    for member in (alice, bob):
        ours = read_key(tree, member.private_key, parse_path(APP_PATH))
        assert seen["keys"][member.public_key.hex()]["key"] == ours.private_key.hex()
    # The user confirmed each AddMember and the CloseStream, as on the real app.
    assert [(a.kind, a.detail) for a in approvals] == [
        (ApprovalKind.ADD_MEMBER, "Alice"),
        (ApprovalKind.ADD_MEMBER, "Bob"),
        (ApprovalKind.CLOSE_STREAM, None),
    ]


def test_ledger_apdu_device_logs_in_with_our_emulator(js_offline: JsInstance) -> None:
    approvals: list[ApprovalRequest] = []
    device, identity = emulator(approvals)
    challenge = build_challenge(KeyPair.generate(), "ledgersync.test", int(time.time()) + 600)
    pending = js_offline.start("protocol.apduGetSeedId", tlv=challenge.encode().hex())
    result = js_offline.serve_apdus(pending, device.exchange)
    assert result["publicKey"] == identity.public_key.hex()
    assert result["attestationPublicKey"] == identity.attestation.public_key.hex()
    # What Ledger's HWDeviceProvider posts (signature, attestationResult) verifies here.
    attestation = decode_attestation(bytes.fromhex(result["attestation"]))
    assert isinstance(attestation, DeviceAttestation)
    SeedIdResponse(
        PubKeyCredential(identity.public_key), bytes.fromhex(result["signature"]), attestation
    ).verify(challenge)
    [kind] = [a.kind for a in approvals]
    assert kind == ApprovalKind.LOGIN


def test_ledger_hw_device_provider_with_our_emulator_against_our_server(
    make_js: Callable[[str], JsInstance], server: LocalServer
) -> None:
    """Ledger's own HWDeviceProvider and ApduDevice (the path Ledger Live takes with a real
    Nano) log our emulated Ledger Sync app in to our server, create the trustchain, add a
    second instance, and rotate the key to remove it."""
    approvals: list[ApprovalRequest] = []
    device, identity = emulator(approvals)
    alice, bob = make_js("Alice"), make_js("Bob")
    for instance, name in ((alice, "Alice"), (bob, "Bob")):
        instance.call("configure", trustchainApiBaseUrl=server.url, name=name, apdu=True)
        instance.call("initMemberCredentials")

    created = alice.serve_apdus(alice.start("getOrCreateTrustchain"), device.exchange)
    assert created["type"] == "created"
    joined = bob.serve_apdus(bob.start("getOrCreateTrustchain"), device.exchange)
    assert joined == {"type": "updated", "trustchain": created["trustchain"]}
    bob_id = bob.call("getState")["creds"]["pubkey"]
    assert [m["name"] for m in alice.call("getMembers")] == ["Alice", "Bob"]

    rotated = alice.serve_apdus(alice.start("removeMember", id=bob_id), device.exchange)
    assert rotated["applicationPath"] == "m/0'/16'/1'"
    with pytest.raises(JsError) as error:
        bob.call("restoreTrustchain")
    assert error.value.name == "TrustchainEjected"
    kinds = [a.kind for a in approvals]
    assert kinds.count(ApprovalKind.LOGIN) >= 2
    assert ApprovalKind.CLOSE_STREAM in kinds
    assert identity.public_key.hex() not in {m["id"] for m in alice.call("getMembers")}
