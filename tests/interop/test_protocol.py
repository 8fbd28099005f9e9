"""Byte-level interoperability of ``ledgersync.protocol`` with Ledger's JavaScript library.

No server: trustchains built by Ledger's ``SoftwareDevice`` are resolved by our resolver and
the reverse, keys read on both sides agree, user data and Cloud Sync payloads cross both ways,
and the login bodies Ledger's SDK posts are exactly the ones our challenge module builds.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import pytest

from ledgersync.protocol import (
    OWNER,
    KeyPair,
    ResolutionError,
    builders,
    crypto,
    encode_stream,
    parse_path,
    qr,
    read_key,
    resolve_tree,
)
from ledgersync.protocol.challenge import (
    Challenge,
    build_challenge,
    decode_attestation,
    device_authentication,
    member_authentication,
    parse_expiry,
    sign_seed_id,
)
from ledgersync.protocol.errors import CryptoError
from ledgersync.protocol.userdata import (
    decode_cloud_payload,
    decrypt_user_data,
    encode_cloud_payload,
    encrypt_user_data,
)

from .js import JsError, JsInstance

APP_PATH = "m/0'/16'/0'"


def streams_of(result: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(hex_stream) for hex_stream in result["streams"].values()]


def creds(pair: KeyPair) -> dict[str, str]:
    return {"pubkey": pair.public_key.hex(), "privatekey": pair.private_key.hex()}


def js_tree(
    js: JsInstance, device: KeyPair, members: list[tuple[KeyPair, str]], **extra: Any
) -> dict[str, Any]:
    return js.call(
        "protocol.createTrustchain",
        devicePrivateKey=device.private_key.hex(),
        members=[{"pubkey": m.public_key.hex(), "name": name} for m, name in members],
        **extra,
    )


def test_harness_runs_the_pinned_packages(js_offline: JsInstance) -> None:
    assert js_offline.ready["versions"] == {
        "@ledgerhq/hw-ledger-key-ring-protocol": "0.10.7",
        "@ledgerhq/ledger-key-ring-protocol": "0.15.2",
        "@ledgerhq/live-wallet": "0.27.4",
    }


def test_trustchain_built_by_ledger_js_resolves_here(js_offline: JsInstance) -> None:
    """Seed, Derive+AddMember+PublishKey, AddMember+PublishKey by Ledger's SoftwareDevice."""
    device, alice, bob = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    built = js_tree(js_offline, device, [(alice, "Alice's Mac"), (bob, "Bob's phone")])

    tree = resolve_tree(streams_of(built))
    assert tree.trustchain_id == built["rootId"]
    app = tree.get(parse_path(APP_PATH))
    assert app is not None and not app.closed
    assert [(m.public_key, m.name, m.permissions) for m in app.added_members] == [
        (alice.public_key, "Alice's Mac", OWNER),
        (bob.public_key, "Bob's phone", OWNER),
    ]
    assert app.creator == device.public_key

    seen_by_js = js_offline.call(
        "protocol.resolveTrustchain",
        streams=built["streams"],
        readers=[alice.private_key.hex(), bob.private_key.hex()],
    )
    for member in (alice, bob):
        ours = read_key(tree, member.private_key, parse_path(APP_PATH))
        theirs = seen_by_js["keys"][member.public_key.hex()]
        assert ours.private_key.hex() == theirs["key"]  # the walletSyncEncryptionKey
        assert ours.xpriv.hex() == theirs["xpriv"]

    # The JS Derive key is BIP32(root xpriv, m/0'/16'/0'), as our builders make it.
    root_key = read_key(tree, device.private_key, parse_path("m/"))
    expected = crypto.derive_path(root_key.xpriv, parse_path(APP_PATH))
    assert app.group_key == crypto.public_key_of(expected[:32])
    assert read_key(tree, alice.private_key, parse_path(APP_PATH)).xpriv == expected


def test_closed_stream_built_by_ledger_js(js_offline: JsInstance) -> None:
    device, alice = KeyPair.generate(), KeyPair.generate()
    built = js_tree(js_offline, device, [(alice, "Alice")], close=True)
    app = resolve_tree(streams_of(built)).get(parse_path(APP_PATH))
    assert app is not None and app.closed


def test_trustchain_built_here_resolves_in_ledger_js(js_offline: JsInstance) -> None:
    """Our builders: device Seed and Derive, a member adding another (QR), device CloseStream."""
    device, alice, bob = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    seed, root_xpriv = builders.seed_block(device)
    derive, app_xpriv = builders.derive_block(
        device, root_xpriv, parse_path(APP_PATH), seed.hash(), member=(alice.public_key, "Alice")
    )
    add_bob = builders.add_member_block(alice, derive.hash(), app_xpriv, bob.public_key, "Bob")
    root_stream = encode_stream([seed]).hex()
    app_stream = encode_stream([derive, add_bob]).hex()

    seen = js_offline.call(
        "protocol.resolveTrustchain",
        streams={"m/": root_stream, "m/16'": app_stream},
        readers=[
            alice.private_key.hex(),
            bob.private_key.hex(),
            KeyPair.generate().private_key.hex(),
        ],
    )
    ours = resolve_tree([bytes.fromhex(root_stream), bytes.fromhex(app_stream)])
    assert seen["rootId"] == ours.trustchain_id
    assert seen["applicationPath"] == APP_PATH
    app = next(s for s in seen["streams"] if s["path"] == APP_PATH)
    assert app["membersData"] == [
        {"id": alice.public_key.hex(), "name": "Alice", "permissions": OWNER},
        {"id": bob.public_key.hex(), "name": "Bob", "permissions": OWNER},
    ]
    assert app["members"] == [device.public_key.hex(), alice.public_key.hex(), bob.public_key.hex()]
    for member in (alice, bob):
        assert seen["keys"][member.public_key.hex()]["key"] == app_xpriv[:32].hex()
    stranger = [
        v
        for k, v in seen["keys"].items()
        if k not in {alice.public_key.hex(), bob.public_key.hex()}
    ]
    assert "error" in stranger[0]

    # A CloseStream from our builders is accepted by Ledger's resolver too.
    close = builders.close_stream_block(device, add_bob.hash())
    closed_stream = encode_stream([derive, add_bob, close]).hex()
    seen = js_offline.call(
        "protocol.resolveTrustchain", streams={"m/": root_stream, "m/16'": closed_stream}
    )
    assert next(s for s in seen["streams"] if s["path"] == APP_PATH)["blocks"] == 3


def test_ledger_js_extends_a_trustchain_built_here(js_offline: JsInstance) -> None:
    """Ledger's SoftwareDevice adds a member (as a member, QR-style) and derives a rotated
    stream (as the device) on our blocks; we resolve the result and read the same keys."""
    device, alice, carol = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
    seed, root_xpriv = builders.seed_block(device)
    derive, app_xpriv = builders.derive_block(
        device, root_xpriv, parse_path(APP_PATH), seed.hash(), member=(alice.public_key, "Alice")
    )
    streams = {"m/": encode_stream([seed]).hex(), "m/16'": encode_stream([derive]).hex()}

    extended = js_offline.call(
        "protocol.extendTrustchain",
        streams=streams,
        signerPrivateKey=alice.private_key.hex(),
        path=APP_PATH,
        addMember={"pubkey": carol.public_key.hex(), "name": "Carol"},
    )
    tree = resolve_tree(streams_of(extended))
    app = tree.get(parse_path(APP_PATH))
    assert app is not None
    assert [m.name for m in app.added_members] == ["Alice", "Carol"]
    assert app.blocks[1].block.issuer == alice.public_key
    assert read_key(tree, carol.private_key, parse_path(APP_PATH)).xpriv == app_xpriv

    rotated_path = "m/0'/16'/1'"
    rotated = js_offline.call(
        "protocol.extendTrustchain",
        streams=extended["streams"],
        signerPrivateKey=device.private_key.hex(),
        path=rotated_path,
        addMember={"pubkey": carol.public_key.hex(), "name": "Carol"},
    )
    tree = resolve_tree(streams_of(rotated))
    assert tree.application_index(16) == 1
    key = read_key(tree, carol.private_key, parse_path(rotated_path))
    assert key.xpriv == crypto.derive_path(root_xpriv, parse_path(rotated_path))


def test_our_resolver_rejects_what_ledger_js_rejects(js_offline: JsInstance) -> None:
    """A block signed by a non-member: both resolvers refuse the stream."""
    device, alice, mallory, eve = (KeyPair.generate() for _ in range(4))
    seed, root_xpriv = builders.seed_block(device)
    derive, app_xpriv = builders.derive_block(
        device, root_xpriv, parse_path(APP_PATH), seed.hash(), member=(alice.public_key, "Alice")
    )
    forged = builders.add_member_block(mallory, derive.hash(), app_xpriv, eve.public_key, "Eve")
    streams = [encode_stream([seed]), encode_stream([derive, forged])]
    with pytest.raises(ResolutionError) as ours:
        resolve_tree(streams)
    assert (ours.value.height, ours.value.path) == (1, APP_PATH)
    with pytest.raises(JsError, match=r"at height 1$"):
        js_offline.call("protocol.resolveTrustchain", streams=[stream.hex() for stream in streams])


@pytest.mark.parametrize("size", [0, 1, 31, 1000, 70_000])
def test_user_data_crosses_both_ways(js_offline: JsInstance, size: int) -> None:
    key = KeyPair.generate().private_key
    plaintext = os.urandom(size)
    from_js = bytes.fromhex(
        js_offline.call("protocol.encryptUserData", key=key.hex(), data=plaintext.hex())
    )
    assert from_js[0] == 0 and len(from_js) == 1 + 33 + 16 + 16 + size
    assert decrypt_user_data(key, from_js) == plaintext
    ours = encrypt_user_data(key, plaintext)
    assert js_offline.call("protocol.decryptUserData", key=key.hex(), data=ours.hex()) == (
        plaintext.hex()
    )


def test_user_data_under_another_key_fails_on_both_sides(js_offline: JsInstance) -> None:
    key, other = KeyPair.generate().private_key, KeyPair.generate().private_key
    from_js = bytes.fromhex(
        js_offline.call("protocol.encryptUserData", key=key.hex(), data="00" * 8)
    )
    with pytest.raises(CryptoError):
        decrypt_user_data(other, from_js)
    with pytest.raises(JsError):
        js_offline.call(
            "protocol.decryptUserData", key=other.hex(), data=encrypt_user_data(key, b"x").hex()
        )


DOCUMENT = {
    "accounts": [
        {
            "id": "js:2:ethereum:0x66c4371aE8FFeD2ec1c2EBbbcCfb7E494181E1E3:",
            "currencyId": "ethereum",
            "freshAddress": "0x66c4371aE8FFeD2ec1c2EBbbcCfb7E494181E1E3",
            "seedIdentifier": "04ab",
            "derivationMode": "",
            "index": 0,
        }
    ],
    "accountNames": {"js:2:ethereum:0x66c4371aE8FFeD2ec1c2EBbbcCfb7E494181E1E3:": "Épargne 💰"},
    "futureModule": {"kept": [1, 2, 3]},
}


def test_cloud_sync_payload_crosses_both_ways(js_offline: JsInstance) -> None:
    """live-wallet's cipher (JSON, pako deflate, envelope, base64) against ours."""
    key = KeyPair.generate().private_key
    payload = js_offline.call("protocol.cloudEncrypt", key=key.hex(), document=DOCUMENT)
    base64.b64decode(payload, validate=True)
    assert decode_cloud_payload(key, payload) == DOCUMENT
    ours = encode_cloud_payload(key, DOCUMENT)
    assert js_offline.call("protocol.cloudDecrypt", key=key.hex(), payload=ours) == DOCUMENT


def fresh_challenge() -> Challenge:
    return build_challenge(KeyPair.generate(), "ledgersync.test", int(time.time()) + 1800)


def test_ledger_js_parses_our_challenge(js_offline: JsInstance) -> None:
    challenge = fresh_challenge()
    parsed = js_offline.call("protocol.parseChallenge", tlv=challenge.encode().hex())
    assert parsed["hash"] == challenge.hash().hex()
    assert parsed["reencoded"] == challenge.encode().hex()
    theirs = dict(parsed["json"])
    assert theirs.pop("payloadType") == 7
    # Ledger prints the expiry with milliseconds ("…:24.000Z"; we serve "…:24Z"): the same time.
    # Its clients never send their own rendering: they post back the JSON we served.
    assert parse_expiry(theirs["challenge"].pop("expiry")) == challenge.expiry
    ours = challenge.to_json()
    del ours["challenge"]["expiry"]
    assert theirs == ours


def test_member_login_body_is_byte_identical(js_offline: JsInstance) -> None:
    """Ledger's SDK.auth (its own code, fed our challenge) posts exactly what we build."""
    challenge = fresh_challenge()
    member = KeyPair.generate()
    trustchain_id = "00" + os.urandom(32).hex()
    body = js_offline.call(
        "protocol.memberLoginBody",
        challenge={"json": challenge.to_json(), "tlv": challenge.encode().hex()},
        creds=creds(member),
        rootId=trustchain_id,
    )
    assert body == {
        "challenge": challenge.to_json(),
        "signature": member_authentication(challenge, member.private_key, trustchain_id),
    }


def test_device_login_body_verifies_with_the_test_attestation_key(
    js_offline: JsInstance, attestation_keys: dict[str, Any]
) -> None:
    """The harness's software device logs in like the Ledger Sync app built with its TEST key."""
    challenge = fresh_challenge()
    device = KeyPair.generate()
    test_key = bytes.fromhex(attestation_keys["test_private_key"])
    body = js_offline.call(
        "protocol.deviceLoginBody",
        challenge={"json": challenge.to_json(), "tlv": challenge.encode().hex()},
        devicePrivateKey=device.private_key.hex(),
        attestationPrivateKey=test_key.hex(),
    )
    expected = device_authentication(sign_seed_id(challenge, device.private_key, test_key))
    assert body == {"challenge": challenge.to_json(), "signature": expected}
    attestation = decode_attestation(bytes.fromhex(body["signature"]["attestation"]))
    assert attestation.credential.public_key.hex() == attestation_keys["test_public_key_compressed"]
    attestation.verify(challenge.hash(), bytes.fromhex(body["signature"]["signature"]))


def test_qr_pairing_payloads_cross_both_ways(js_offline: JsInstance) -> None:
    """Ledger's QR message cipher (ECDH x-coordinate session key, AES-GCM) against ours."""
    host, candidate = KeyPair.generate(), KeyPair.generate()
    trustchain = {
        "rootId": "00" + os.urandom(32).hex(),
        "walletSyncEncryptionKey": os.urandom(32).hex(),
        "applicationPath": APP_PATH,
    }
    encrypted = js_offline.call(
        "protocol.qrEncrypt",
        ownPrivateKey=host.private_key.hex(),
        peerPublicKey=candidate.public_key.hex(),
        payload={"trustchain": trustchain},
    )
    frame = qr.Message(host.public_key.hex(), "TrustchainAddedMember", encrypted).encode()
    ours = qr.SessionCipher.from_ecdh(candidate.private_key, host.public_key)
    assert ours.decrypt_message(qr.parse_message(frame)) == {"trustchain": trustchain}

    reply = qr.Message(
        candidate.public_key.hex(),
        "CompleteHandshakeChallenge",
        ours.encrypt_payload({"digits": "042"}),
    )
    assert js_offline.call(
        "protocol.qrDecrypt",
        ownPrivateKey=host.private_key.hex(),
        peerPublicKey=candidate.public_key.hex(),
        message=reply.to_json(),
    ) == {"digits": "042"}
    with pytest.raises(JsError) as error:
        js_offline.call(
            "protocol.qrDecrypt",
            ownPrivateKey=KeyPair.generate().private_key.hex(),
            peerPublicKey=candidate.public_key.hex(),
            message=reply.to_json(),
        )
    assert error.value.name == "InvalidEncryptionKeyError"


def test_legacy_import_qr_detection_agrees(js_offline: JsInstance) -> None:
    legacy = base64.b64encode(bytes((0x64, 0x00, 0x03, 0x00)) + os.urandom(120)).decode()
    other = base64.b64encode(os.urandom(124)).decode()
    for text in (legacy, other, "not base64 at all", legacy[:40]):
        assert js_offline.call("protocol.isOldBase64Import", text=text) == qr.is_legacy_import(text)


def test_reading_a_key_from_an_ancestor_stream_differs_and_no_flow_does_it(
    js_offline: JsInstance,
) -> None:
    """Pinned difference: Ledger's SoftwareDevice.readKey, for a path whose key it finds only
    on an ancestor stream, derives the missing levels by position (non-hardened 1, 2 from the
    root) where we derive the path's own indices. Members always find their key on the
    application stream itself, where both agree (the tests above), so no flow reads this way."""
    device = KeyPair.generate()
    built = js_tree(js_offline, device, [])
    path = "m/0'/16'/5'"
    seen = js_offline.call(
        "protocol.resolveTrustchain",
        streams=built["streams"],
        readers=[device.private_key.hex()],
        path=path,
    )
    tree = resolve_tree(streams_of(built))
    root = read_key(tree, device.private_key, parse_path("m/")).xpriv
    theirs = seen["keys"][device.public_key.hex()]["xpriv"]
    assert theirs == crypto.derive_path(root, [1, 2]).hex()
    ours = read_key(tree, device.private_key, parse_path(path)).xpriv
    assert ours == crypto.derive_path(root, parse_path(path))
