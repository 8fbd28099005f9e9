"""Streams recorded from Ledger Live and a real Ledger Sync app pass the server's rules, and
the server then serves them to the recorded members as Ledger's backend did.

The recorded device's private key is not known, so the streams are imported through the same
validation and store the endpoints use (``validate_*`` then ``KeyRingStore``); the members,
whose keys are in the vector, then talk to the running server over HTTP.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2

from ledgersync.protocol import KeyPair, decode_stream_blocks, resolve_stream
from ledgersync.protocol.builders import add_member_block
from ledgersync.server.keyring.validation import (
    Limits,
    validate_append,
    validate_derivation,
    validate_root,
)
from ledgersync.server.storage import StreamInfo, TrustchainInfo, open_storage

from ..support.keyring import login_member
from ..support.servers import RunningServer
from ..support.vectors import vector

SESSION = vector("e2e_ledger_live_success_session")
LIMITS = Limits(max_blocks_per_request=64, max_stream_blocks=1024, max_streams_per_trustchain=256)
APP_0, APP_1 = "m/0'/16'/0'", "m/0'/16'/1'"


def member(name: str) -> KeyPair:
    return KeyPair.from_private_key(bytes.fromhex(SESSION["software_members"][name]["private_key"]))


def stream(key: str) -> bytes:
    return bytes.fromhex(SESSION[key]["hex"])


async def import_recorded_session(database_url: str) -> None:
    """What POST /v1/seed, /derivation and PUT /commands do, minus the device's login."""
    storage = await open_storage(database_url)
    store = storage.keyring
    try:
        device = bytes.fromhex(SESSION["device_seed_id_public_key"])
        trustchain_id, root = validate_root(
            decode_stream_blocks(stream("root_stream")), device, LIMITS
        )
        assert trustchain_id == SESSION["trustchain_id"]
        await store.create_trustchain(trustchain_id, device, root, 0)
        for key in ("app_stream_index0", "app_stream_index1_rotated"):
            first, *rest = decode_stream_blocks(stream(key))
            info = await store.get_trustchain(trustchain_id)
            assert info is not None
            await store.add_stream(trustchain_id, validate_derivation([first], info, LIMITS))
            for block in rest:  # one PUT /commands per block, as Ledger Live sends them
                info = await store.get_trustchain(trustchain_id)
                assert isinstance(info, TrustchainInfo)
                current = info.stream(SESSION[key]["path"])
                assert current is not None
                stored = await store.read_blocks(trustchain_id, current.path)
                update = validate_append(info, current, stored, [block], LIMITS)
                await store.append(trustchain_id, current, update)
    finally:
        await storage.close()


def test_recorded_session_is_served_as_ledger_did(
    server: RunningServer, client: httpx2.Client, database_url: str
) -> None:
    asyncio.run(import_recorded_session(database_url))
    trustchain_id = SESSION["trustchain_id"]

    first = login_member(client, member("Member 1"), trustchain_id)
    # Member 1 is in both open streams (mid-rotation state): the newest one is its permission.
    assert first.refresh().json()["permissions"] == {trustchain_id: {APP_1: ["owner"]}}
    tree: dict[str, Any] = first.tree(trustchain_id).json()
    assert tree == {
        "m/": SESSION["root_stream"]["hex"],
        "m/16'": SESSION["app_stream_index1_rotated"]["hex"],
    }
    second = login_member(client, member("Member 2"), trustchain_id)
    assert second.refresh().json()["permissions"] == {trustchain_id: {APP_0: ["owner"]}}

    # Member 1 adds a member to the rotated stream with the key the recording gave it.
    blocks = decode_stream_blocks(stream("app_stream_index1_rotated"))
    xpriv = bytes.fromhex(
        SESSION["app_stream_index1_rotated"]["derived"]["app_xpriv_decrypted_by_member1"]
    )
    newcomer = KeyPair.generate()
    block = add_member_block(
        member("Member 1"), blocks[-1].hash(), xpriv, newcomer.public_key, "new"
    )
    assert first.put_blocks(trustchain_id, APP_1, [block]).status_code == 204
    assert login_member(client, newcomer, trustchain_id).refresh().status_code == 200


def test_an_append_records_only_the_members_its_blocks_add() -> None:
    """What an append stores besides its blocks: one row per member the blocks add (the
    stored members are recorded already), so that an append's cost does not grow with the
    stream's membership."""
    trustchain_id = SESSION["trustchain_id"]
    device = bytes.fromhex(SESSION["device_seed_id_public_key"])
    blocks = decode_stream_blocks(stream("app_stream_index1_rotated"))
    path = SESSION["app_stream_index1_rotated"]["path"]
    info = TrustchainInfo(trustchain_id, device, ())
    whole = validate_append(
        info,
        StreamInfo(path, (16, 1), 1, blocks[0].hash(), False),
        [blocks[0].encoded],
        blocks[1:],
        LIMITS,
    )
    # The members the blocks after the Derive add: the whole stream's, less the Derive's own.
    everyone = {member.public_key for member in resolve_stream(blocks).members}
    creators = {member.public_key for member in resolve_stream(blocks[:1]).members}
    assert everyone - creators and set(whole.members) == everyone - creators
    xpriv = bytes.fromhex(
        SESSION["app_stream_index1_rotated"]["derived"]["app_xpriv_decrypted_by_member1"]
    )
    newcomer = KeyPair.generate()
    added = add_member_block(
        member("Member 1"), blocks[-1].hash(), xpriv, newcomer.public_key, "new"
    )
    stored_state = StreamInfo(path, (16, 1), len(blocks), blocks[-1].hash(), False)
    stored = [block.encoded for block in blocks]
    update = validate_append(
        info, stored_state, stored, decode_stream_blocks(added.encode()), LIMITS
    )
    assert update.members == (newcomer.public_key,)
    assert update.height == len(blocks) + len(decode_stream_blocks(added.encode()))
