"""The threat model of ``docs/security.md``, as tests: what a malicious operator (who has the
database, the key file and the server's answers) can and cannot do to Ledger Live-like
clients (the SDK).

Guarantees: the operator cannot slip a block of its own into a trustchain (a new member, a
changed name, a closed stream): clients verify every block and refuse the tree. Limitations,
said plainly and shown here: Cloud Sync payloads are encrypted to the application stream's
public key, which the trustchain publishes, and carry no signature, so the operator can write
a document that clients decrypt and accept, or replay an old one under a newer version; and
it can serve a trustchain as it was before a rotation (withholding the new stream) to a
client, which then follows it.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledgersync.device.software import SoftwareDevice
from ledgersync.protocol import (
    KeyPair,
    Seed,
    crypto,
    decode_stream_blocks,
    parse_path,
    resolve_tree,
)
from ledgersync.protocol.builders import add_member_block
from ledgersync.protocol.userdata import ENVELOPE_VERSION
from ledgersync.sdk.cloudsync import CloudSyncSDK, UpdateEvent
from ledgersync.sdk.credentials import MemberCredentials, Trustchain, TrustchainMember
from ledgersync.sdk.errors import InvalidTrustchainData
from ledgersync.sdk.trustchain import TrustchainSDK
from ledgersync.server.keys import ServerKeys

from ..support.devices import software_device
from ..support.keyring import bearer
from ..support.servers import RunningServer
from .test_auth_attacks import parts_of, server_token

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # client-side rules: one backend


@dataclass
class Instance:
    sdk: TrustchainSDK
    credentials: MemberCredentials
    cloud: CloudSyncSDK
    trustchain: Trustchain
    device: SoftwareDevice


@pytest.fixture
def server(make_server: Callable[..., RunningServer]) -> RunningServer:
    return make_server()


@pytest.fixture
async def instances(server: RunningServer) -> AsyncIterator[list[Instance]]:
    device, _ = software_device()
    made = []
    for name in ("Linux", "Mac", "Phone"):
        sdk = TrustchainSDK(server.url, name=name)
        credentials = sdk.init_member_credentials()
        trustchain = (await sdk.get_or_create_trustchain(device, credentials)).trustchain

        versions: dict[str, int | None] = {"current": None}

        async def save(event: UpdateEvent, versions: dict[str, int | None] = versions) -> None:
            versions["current"] = getattr(event, "version", 0)

        cloud = CloudSyncSDK(
            server.url,
            trustchain_sdk=sdk,
            get_current_version=lambda versions=versions: versions["current"],
            save_new_update=save,
        )
        made.append(Instance(sdk, credentials, cloud, trustchain, device))
    yield made
    for each in made:
        await each.cloud.aclose()
        await each.sdk.aclose()


class Operator:
    """What the server's operator has: the key file (tokens it mints itself) and the stored
    data (read here through its own tokens, byte for byte what the database holds)."""

    def __init__(self, server: RunningServer, victim_token: str) -> None:
        self.server = server
        self.client = server.client()
        keys = ServerKeys.from_json(Path(server.config.key_file).read_text())
        _, claims, _ = parts_of(victim_token)
        self.token = server_token(claims, keys.token_key)  # any claims it likes

    def tree(self, trustchain_id: str) -> dict[str, str]:
        response = self.client.get(f"/v1/trustchain/{trustchain_id}", headers=bearer(self.token))
        assert response.status_code == 200, response.text
        tree: dict[str, str] = response.json()
        return tree

    def document(self, trustchain: Trustchain) -> dict[str, Any]:
        params = {"id": trustchain.root_id, "path": trustchain.application_path}
        document: dict[str, Any] = self.client.get(
            "/atomic/v1/live", params=params, headers=bearer(self.token)
        ).json()
        return document

    def write(self, trustchain: Trustchain, version: int, payload: str) -> None:
        params = {"id": trustchain.root_id, "path": trustchain.application_path, "version": version}
        response = self.client.post(
            "/atomic/v1/live", params=params, json={"payload": payload}, headers=bearer(self.token)
        )
        assert response.json() == {"status": "updated"}, response.text


def encrypt_to(group_key: bytes, document: Any) -> str:
    """A Cloud Sync payload made with the stream's *public* key only (what the operator has)."""
    plaintext = zlib.compress(json.dumps(document).encode())
    ephemeral = KeyPair.generate()
    aes_key = crypto.hmac_sha256(b"", ephemeral.ecdh(group_key))
    iv = os.urandom(crypto.GCM_IV_LENGTH)
    sealed = crypto.aes_gcm_encrypt(aes_key, iv, plaintext)
    ciphertext, tag = sealed[: -crypto.GCM_TAG_LENGTH], sealed[-crypto.GCM_TAG_LENGTH :]
    envelope = bytes((ENVELOPE_VERSION,)) + ephemeral.public_key + iv + tag + ciphertext
    return base64.b64encode(envelope).decode()


def group_key(tree: dict[str, str], path: str) -> bytes:
    resolved = resolve_tree(bytes.fromhex(stream) for stream in tree.values())
    return resolved.derived[parse_path(path)].group_key


async def test_an_operator_can_write_a_document_that_clients_accept(
    server: RunningServer, instances: list[Instance]
) -> None:
    """LIMITATION: payloads are encrypted to a public key the trustchain publishes, and not
    signed, so whoever runs the server can write wallet data that every member decrypts."""
    linux, mac, _ = instances
    await linux.cloud.push(linux.trustchain, linux.credentials, {"accountNames": {"a": "mine"}})
    token = (await mac.sdk.get_jwt(mac.trustchain, mac.credentials)).access_token
    operator = Operator(server, token)
    key = group_key(operator.tree(mac.trustchain.root_id), mac.trustchain.application_path)
    assert key == crypto.public_key_of(mac.trustchain.wallet_sync_encryption_key)
    forged = {"accountNames": {"a": "written by the operator"}}
    version = operator.document(mac.trustchain)["version"]
    operator.write(mac.trustchain, version + 1, encrypt_to(key, forged))
    pulled = await mac.cloud.pull(mac.trustchain, mac.credentials)
    assert pulled.data == forged


async def test_an_operator_can_replay_an_old_document(
    server: RunningServer, instances: list[Instance]
) -> None:
    """LIMITATION: a payload is not bound to its version: an old one, stored again under a
    newer version, is taken by clients for the newest data (a rollback)."""
    linux, mac, _ = instances
    old = {"accountNames": {"a": "old"}}
    await linux.cloud.push(linux.trustchain, linux.credentials, old)
    token = (await mac.sdk.get_jwt(mac.trustchain, mac.credentials)).access_token
    operator = Operator(server, token)
    old_payload = operator.document(mac.trustchain)["payload"]
    pushed = await linux.cloud.push(
        linux.trustchain, linux.credentials, {"accountNames": {"a": "new"}}
    )
    assert pushed.version == 2
    assert operator.document(mac.trustchain)["payload"] != old_payload
    operator.write(mac.trustchain, 3, old_payload)
    assert (await mac.cloud.pull(mac.trustchain, mac.credentials)).data == old


def tampered_trees(tree: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Trees an operator could serve, each with one block of its own making."""
    key = "m/16'"
    blocks = decode_stream_blocks(bytes.fromhex(tree[key]))
    operator = KeyPair.generate()
    last = blocks[-1].hash()
    intruder = add_member_block(operator, last, bytes(64), operator.public_key, "operator").encode()
    yield "a member added by the operator", {**tree, key: tree[key] + intruder.hex()}
    renamed = bytearray(blocks[-1].encoded)
    renamed[len(renamed) // 2] ^= 0x01
    altered = b"".join(block.encoded for block in blocks[:-1]) + bytes(renamed)
    yield "a block altered", {**tree, key: altered.hex()}
    yield (
        "a block removed from the middle",
        {
            **tree,
            key: b"".join(b.encoded for i, b in enumerate(blocks) if i != 1).hex(),
        },
    )
    root = decode_stream_blocks(bytes.fromhex(tree["m/"]))
    assert isinstance(root[0].block.commands[0], Seed)
    yield "another root", {**tree, "m/": (bytes(root[0].encoded[:-1]) + b"\x00").hex()}


async def test_clients_refuse_blocks_the_operator_made(
    server: RunningServer, instances: list[Instance], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GUARANTEE: every block is signed by a member (or the device) and checked by clients;
    a tree with a block the operator made or changed does not verify."""
    mac = instances[1]
    token = (await mac.sdk.get_jwt(mac.trustchain, mac.credentials)).access_token
    genuine = Operator(server, token).tree(mac.trustchain.root_id)
    assert len(decode_stream_blocks(bytes.fromhex(genuine["m/16'"]))) >= 3
    for _, tree in tampered_trees(genuine):

        async def serve(jwt: Any, root_id: str, tree: dict[str, str] = tree) -> dict[str, str]:
            return tree

        monkeypatch.setattr(mac.sdk.api, "get_trustchain", serve)
        with pytest.raises(InvalidTrustchainData):
            await mac.sdk.get_members(mac.trustchain, mac.credentials)
        with pytest.raises(InvalidTrustchainData):
            await mac.sdk.restore_trustchain(mac.trustchain, mac.credentials)
    monkeypatch.undo()
    members = await mac.sdk.get_members(mac.trustchain, mac.credentials)
    assert len(members) == 3  # the genuine tree still verifies


async def test_clients_follow_a_tree_rolled_back_before_a_rotation(
    server: RunningServer, instances: list[Instance], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LIMITATION: a client learns the trustchain from the server; one that is served the
    tree as it was before a rotation (the new stream withheld) keeps the old path and key,
    which the removed member knows."""
    linux, mac, phone = instances
    token = (await phone.sdk.get_jwt(phone.trustchain, phone.credentials)).access_token
    before = Operator(server, token).tree(phone.trustchain.root_id)
    removed = TrustchainMember(mac.credentials.pubkey, "Mac")
    new = await linux.sdk.remove_member(linux.device, linux.trustchain, linux.credentials, removed)
    honest = await phone.sdk.restore_trustchain(phone.trustchain, phone.credentials)
    assert honest.application_path == new.application_path

    async def serve_old(jwt: Any, root_id: str) -> dict[str, str]:
        return before

    monkeypatch.setattr(phone.sdk.api, "get_trustchain", serve_old)
    rolled_back = await phone.sdk.restore_trustchain(phone.trustchain, phone.credentials)
    assert rolled_back.application_path == mac.trustchain.application_path
    assert rolled_back.wallet_sync_encryption_key == mac.trustchain.wallet_sync_encryption_key
