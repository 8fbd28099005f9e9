"""The device layer's software Ledger Sync app against the server: its logins and the blocks
it signs (Seed, Derive + member, AddMember, CloseStream) are what the server expects."""

from __future__ import annotations

import asyncio

import httpx2
from mnemonic import Mnemonic

from ledgersync.device import (
    AddMemberRequest,
    CloseRequest,
    DeriveRequest,
    SeedRequest,
    SoftwareDevice,
    approve_all,
)
from ledgersync.protocol import KeyPair, application_path, resolve_tree
from ledgersync.protocol.block import Block
from ledgersync.protocol.challenge import device_authentication

from ..support.keyring import Session, app_path, get_challenge, member_login, token_of


def device_session(client: httpx2.Client, device: SoftwareDevice) -> Session:
    challenge = get_challenge(client)
    response = asyncio.run(device.sign_challenge(challenge))
    answer = {"challenge": challenge.to_json(), "signature": device_authentication(response)}
    return Session(client, token_of(client.post("/v1/authenticate", json=answer)))


def tree_streams(session: Session, trustchain_id: str) -> list[bytes]:
    return [bytes.fromhex(value) for value in session.tree(trustchain_id).json().values()]


def test_a_software_ledger_sync_app_runs_a_trustchain(client: httpx2.Client) -> None:
    device = SoftwareDevice.from_mnemonic(Mnemonic("english").generate(256), approver=approve_all)
    session = device_session(client, device)
    seed: Block = asyncio.run(device.sign_block(SeedRequest(), None))
    assert session.post_json("/v1/seed", seed.encode().hex()).status_code == 204
    trustchain_id = "00" + seed.hash().hex()
    assert session.refresh().json()["permissions"] == {trustchain_id: {"m/": ["owner"]}}

    path = application_path(16, 0)
    first, second = KeyPair.generate(), KeyPair.generate()
    tree = resolve_tree(tree_streams(session, trustchain_id))
    derive = asyncio.run(device.sign_block(DeriveRequest(path, first.public_key, "first"), tree))
    url = f"/v1/trustchain/{trustchain_id}/derivation"
    assert session.post_json(url, derive.encode().hex()).status_code == 204

    tree = resolve_tree(tree_streams(session, trustchain_id))
    add = asyncio.run(device.sign_block(AddMemberRequest(path, second.public_key, "second"), tree))
    assert session.put_blocks(trustchain_id, app_path(0), [add]).status_code == 204
    for member in (first, second):
        assert member_login(client, member, trustchain_id).status_code == 200

    tree = resolve_tree(tree_streams(session, trustchain_id))
    close = asyncio.run(device.sign_block(CloseRequest(path), tree))
    assert session.put_blocks(trustchain_id, app_path(0), [close]).status_code == 204
    assert member_login(client, first, trustchain_id).status_code == 401
