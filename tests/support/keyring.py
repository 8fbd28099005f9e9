"""Key Ring clients for tests: logins and trustchains built with the protocol layer.

Nothing here imports the server: requests go over HTTP and expected values come from the
protocol layer or the test vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx2

from ledgersync.protocol import KeyPair, application_path, format_path
from ledgersync.protocol.block import Block
from ledgersync.protocol.builders import (
    add_member_block,
    close_stream_block,
    derive_block,
    seed_block,
)
from ledgersync.protocol.challenge import (
    Challenge,
    device_authentication,
    member_authentication,
    sign_seed_id,
)

from .vectors import vector

ATTESTATION = vector("device_attestation_keys")
TEST_ATTESTATION_SECRET = bytes.fromhex(ATTESTATION["test_private_key"])
TEST_ATTESTATION_KEY = bytes.fromhex(ATTESTATION["test_public_key_compressed"])
PROD_ATTESTATION_KEY = bytes.fromhex(ATTESTATION["prod_public_key_compressed"])
LEDGER_SYNC = 16


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_challenge(client: httpx2.Client) -> Challenge:
    response = client.get("/v1/challenge")
    assert response.status_code == 200, response.text
    return Challenge.from_json(response.json()["json"])


def device_answer(
    challenge: Challenge, device: KeyPair, attestation_secret: bytes = TEST_ATTESTATION_SECRET
) -> dict[str, Any]:
    response = sign_seed_id(challenge, device.private_key, attestation_secret)
    return {"challenge": challenge.to_json(), "signature": device_authentication(response)}


def member_answer(challenge: Challenge, member: KeyPair, trustchain_id: str) -> dict[str, Any]:
    return {
        "challenge": challenge.to_json(),
        "signature": member_authentication(challenge, member.private_key, trustchain_id),
    }


def device_login(
    client: httpx2.Client,
    device: KeyPair,
    attestation_secret: bytes = TEST_ATTESTATION_SECRET,
) -> httpx2.Response:
    answer = device_answer(get_challenge(client), device, attestation_secret)
    return client.post("/v1/authenticate", json=answer)


def member_login(client: httpx2.Client, member: KeyPair, trustchain_id: str) -> httpx2.Response:
    return client.post(
        "/v1/authenticate", json=member_answer(get_challenge(client), member, trustchain_id)
    )


def token_of(response: httpx2.Response) -> str:
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def stream_hex(blocks: list[Block]) -> str:
    return b"".join(block.encode() for block in blocks).hex()


def app_path(index: int, application: int = LEDGER_SYNC) -> str:
    return format_path(application_path(application, index))


@dataclass
class Trustchain:
    """The client's copy of a trustchain it builds and posts to the server."""

    device: KeyPair
    root: Block
    root_xpriv: bytes
    streams: dict[str, list[Block]] = field(default_factory=dict)
    xprivs: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def new(cls, device: KeyPair) -> Trustchain:
        root, xpriv = seed_block(device)
        return cls(device, root, xpriv, {"m/": [root]})

    @property
    def id(self) -> str:
        return "00" + self.root.hash().hex()

    def last_hash(self, path: str) -> bytes:
        return self.streams[path][-1].hash()

    def derive(
        self, index: int, member: KeyPair | None = None, application: int = LEDGER_SYNC
    ) -> Block:
        """The first block of a new application stream (kept locally, not posted)."""
        path = application_path(application, index)
        block, xpriv = derive_block(
            self.device,
            self.root_xpriv,
            path,
            self.root.hash(),
            member=(member.public_key, "member") if member else None,
        )
        self.streams[format_path(path)] = [block]
        self.xprivs[format_path(path)] = xpriv
        return block

    def add_member(self, path: str, issuer: KeyPair, member: KeyPair, name: str = "m") -> Block:
        block = add_member_block(
            issuer, self.last_hash(path), self.xprivs[path], member.public_key, name
        )
        self.streams[path].append(block)
        return block

    def close(self, path: str, issuer: KeyPair) -> Block:
        block = close_stream_block(issuer, self.last_hash(path))
        self.streams[path].append(block)
        return block


class Session:
    """A logged-in client: a device or a member, with its token."""

    def __init__(self, client: httpx2.Client, token: str) -> None:
        self.client = client
        self.token = token

    def get(self, url: str) -> httpx2.Response:
        return self.client.get(url, headers=bearer(self.token))

    def delete(self, url: str) -> httpx2.Response:
        return self.client.delete(url, headers=bearer(self.token))

    def post_json(self, url: str, body: Any) -> httpx2.Response:
        return self.client.post(url, json=body, headers=bearer(self.token))

    def put_json(self, url: str, body: Any) -> httpx2.Response:
        return self.client.put(url, json=body, headers=bearer(self.token))

    def refresh(self) -> httpx2.Response:
        response = self.get("/v1/refresh")
        if response.status_code == 200:
            self.token = response.json()["access_token"]
        return response

    # --- the Ledger Live calls -----------------------------------------------------------

    def post_seed(self, trustchain: Trustchain) -> httpx2.Response:
        return self.post_json("/v1/seed", stream_hex(trustchain.streams["m/"]))

    def post_derivation(self, trustchain: Trustchain, path: str) -> httpx2.Response:
        url = f"/v1/trustchain/{trustchain.id}/derivation"
        return self.post_json(url, stream_hex(trustchain.streams[path]))

    def put_blocks(self, trustchain_id: str, path: str, blocks: list[Block]) -> httpx2.Response:
        body = {"path": path, "blocks": [block.encode().hex() for block in blocks]}
        return self.put_json(f"/v1/trustchain/{trustchain_id}/commands", body)

    def tree(self, trustchain_id: str) -> httpx2.Response:
        return self.get(f"/v1/trustchain/{trustchain_id}")


def login_device(
    client: httpx2.Client, device: KeyPair, attestation_secret: bytes = TEST_ATTESTATION_SECRET
) -> Session:
    return Session(client, token_of(device_login(client, device, attestation_secret)))


def login_member(client: httpx2.Client, member: KeyPair, trustchain_id: str) -> Session:
    return Session(client, token_of(member_login(client, member, trustchain_id)))


def created_trustchain(
    client: httpx2.Client, members: int = 1
) -> tuple[Trustchain, Session, list[KeyPair]]:
    """A device creates a trustchain with stream ``m/0'/16'/0'`` holding ``members`` members
    (the first added by the Derive block, the others by the device); the device session is
    refreshed so that its token names the new trustchain."""
    device = KeyPair.generate()
    session = login_device(client, device)
    trustchain = Trustchain.new(device)
    assert session.post_seed(trustchain).status_code == 204
    keys = [KeyPair.generate() for _ in range(members)]
    trustchain.derive(0, keys[0] if keys else None)
    assert session.post_derivation(trustchain, app_path(0)).status_code == 204
    for key in keys[1:]:
        block = trustchain.add_member(app_path(0), device, key)
        assert session.put_blocks(trustchain.id, app_path(0), [block]).status_code == 204
    assert session.refresh().status_code == 200
    return trustchain, session, keys


def rotate(session: Session, trustchain: Trustchain, index: int, keep: KeyPair) -> None:
    """Stream ``index`` replaces ``index - 1`` with ``keep`` as its member, the old one closed
    (a removeMember that drops everyone else)."""
    trustchain.derive(index, keep)
    assert session.post_derivation(trustchain, app_path(index)).status_code == 204
    close = trustchain.close(app_path(index - 1), trustchain.device)
    assert session.put_blocks(trustchain.id, app_path(index - 1), [close]).status_code == 204


def error_message(response: httpx2.Response) -> str:
    body = response.json()
    message: str = body["message"]
    return message
