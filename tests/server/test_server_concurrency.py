"""Concurrent writers never fork a stream: real concurrent requests, and the store's
compare-and-set itself."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import httpx2

from ledgersync.protocol import KeyPair, decode_stream_blocks, resolve_stream
from ledgersync.protocol.block import Block
from ledgersync.protocol.builders import add_member_block
from ledgersync.server.storage import NewBlocks, StreamInfo, StreamMoved, open_storage

from ..support.keyring import Session, app_path, created_trustchain, error_message
from ..support.servers import RunningServer

WRITERS = 8


def race(
    server: RunningServer, send: Callable[[httpx2.Client, int], httpx2.Response]
) -> list[httpx2.Response]:
    """Run ``send`` from WRITERS threads released together; their responses, in order."""
    barrier = threading.Barrier(WRITERS)
    responses: list[httpx2.Response | None] = [None] * WRITERS
    clients = [server.client() for _ in range(WRITERS)]
    for client in clients:
        client.get("/_info")  # open the connections before the race

    def writer(index: int) -> None:
        barrier.wait()
        responses[index] = send(clients[index], index)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(response is not None for response in responses)
    return [response for response in responses if response is not None]


def test_concurrent_appends_to_one_stream_never_fork(server: RunningServer) -> None:
    client = server.client()
    trustchain, device, (first,) = created_trustchain(client)
    path = app_path(0)
    parent = trustchain.last_hash(path)
    candidates: list[Block] = [
        add_member_block(first, parent, trustchain.xprivs[path], KeyPair.generate().public_key, "m")
        for _ in range(WRITERS)
    ]

    def send(writer_client: httpx2.Client, index: int) -> httpx2.Response:
        return Session(writer_client, device.token).put_blocks(
            trustchain.id, path, [candidates[index]]
        )

    responses = race(server, send)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [204] + [400] * (WRITERS - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 400:
            assert "path does not match" in error_message(response)
    winner = candidates[[r.status_code for r in responses].index(204)]
    stored = bytes.fromhex(device.tree(trustchain.id).json()["m/16'"])
    assert stored == b"".join(b.encode() for b in trustchain.streams[path]) + winner.encode()
    resolved = resolve_stream(stored, first_parent=trustchain.root.hash())
    assert resolved.height == 2


def test_concurrent_derivations_of_one_index_keep_one(server: RunningServer) -> None:
    client = server.client()
    trustchain, device, _ = created_trustchain(client)
    bodies = []
    for _ in range(WRITERS):
        block = trustchain.derive(1, KeyPair.generate())
        bodies.append(block.encode().hex())

    def send(writer_client: httpx2.Client, index: int) -> httpx2.Response:
        return Session(writer_client, device.token).post_json(
            f"/v1/trustchain/{trustchain.id}/derivation", bodies[index]
        )

    responses = race(server, send)
    statuses = [response.status_code for response in responses]
    assert sorted(statuses) == [204] + [400] * (WRITERS - 1)
    winner = bodies[statuses.index(204)]
    assert device.tree(trustchain.id).json()["m/16'"] == winner


def test_the_store_appends_by_compare_and_set(database_url: str, tmp_path: Path) -> None:
    """Two appends computed from the same state: the second one is refused and not written."""

    async def scenario() -> None:
        storage = await open_storage(database_url)
        try:
            store = storage.keyring
            root = NewBlocks("m/", None, (b"block-0",), 1, b"h0", False, (b"k",))
            await store.create_trustchain("00" + "11" * 32, b"issuer", root, 0)
            info = await store.get_trustchain("00" + "11" * 32)
            assert info is not None
            seen = info.stream("m/")
            assert seen is not None
            first = NewBlocks("m/", None, (b"block-1a",), 2, b"h1a", False, ())
            second = NewBlocks("m/", None, (b"block-1b",), 2, b"h1b", True, ())
            await store.append(info.id, seen, first)
            try:
                await store.append(info.id, seen, second)
            except StreamMoved:
                pass
            else:
                raise AssertionError("the second append should have lost")
            assert await store.read_blocks(info.id, "m/") == [b"block-0", b"block-1a"]
            after = await store.get_trustchain(info.id)
            assert after is not None
            assert after.stream("m/") == StreamInfo("m/", None, 2, b"h1a", False)
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_stored_streams_decode(server: RunningServer) -> None:
    client = server.client()
    trustchain, device, _ = created_trustchain(client, members=3)
    tree = device.tree(trustchain.id).json()
    assert len(decode_stream_blocks(bytes.fromhex(tree["m/16'"]))) == 3
