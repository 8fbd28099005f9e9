"""SIGKILL durability, on SQLite and PostgreSQL: real server processes killed while concurrent
writers run, restarted, killed again; every acknowledged write survives.

Writers: three Cloud Sync writers (one document each, version after version) and two Key Ring
writers (each appending AddMember blocks to its trustchain's application stream). The server
process is SIGKILLed each time the writers have had :data:`ACKS_PER_ROUND` more writes
acknowledged, :data:`KILLS` times, then once more after the writers stop. The listening socket
belongs to the test, so requests sent while the server is down wait in the kernel's queue for
the next process; a request whose connection broke has an unknown outcome, which the writer
settles by reading the state back.

Checked at the end, after a last kill and restart: every acknowledged write is there; each
document's versions 1..n were each written exactly once (acknowledged, or committed just
before a kill), and the stored one is the last with its payload; each Key Ring stream holds
exactly the blocks acknowledged (plus one committed just before a kill) in order, and the
whole tree verifies with :func:`ledgersync.protocol.resolve_tree`; the SQLite file passes
``PRAGMA integrity_check``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from ledgersync.protocol import (
    KeyPair,
    decode_block,
    decode_stream_blocks,
    parse_path,
    resolve_tree,
)
from ledgersync.protocol.builders import add_member_block
from ledgersync.protocol.crypto import sha256

from ..support.keyring import bearer
from ..support.servers import HeldSocketServer
from ..support.world import World, populate

KILLS = 3
ACKS_PER_ROUND = 8
#: Bound on attempts to settle one unknown outcome (each waits for the next process).
SETTLE_ATTEMPTS = 50


@dataclass
class Progress:
    """Acknowledged writes, counted for the kill rounds."""

    acks: int = 0
    target: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    stop: bool = False

    def acked(self) -> None:
        self.acks += 1
        if self.acks >= self.target:
            self.reached.set()

    def next_round(self) -> None:
        self.target = self.acks + ACKS_PER_ROUND
        self.reached.clear()


async def attempt(
    client: httpx2.AsyncClient, method: str, url: str, **kw: Any
) -> httpx2.Response | None:
    """One request; None if its connection broke (the server process was killed)."""
    try:
        return await client.request(method, url, **kw)
    except httpx2.TransportError:
        return None


async def answered(client: httpx2.AsyncClient, method: str, url: str, **kw: Any) -> httpx2.Response:
    """The request, repeated until a server process answers it (reads only)."""
    for _ in range(SETTLE_ATTEMPTS):
        response = await attempt(client, method, url, **kw)
        if response is not None:
            assert response.status_code < 500, response.text
            return response
    raise AssertionError(f"{method} {url}: no answer after {SETTLE_ATTEMPTS} attempts")


@dataclass
class DocumentWriter:
    """Writes versions 1, 2, … of one Cloud Sync document (its own slug)."""

    slug: str
    world: World
    written: dict[int, str] = field(default_factory=dict)  # version → payload, committed
    acknowledged: list[int] = field(default_factory=list)
    unknown: int = 0

    def params(self, **extra: Any) -> dict[str, Any]:
        return {"id": self.world.trustchain_id, "path": self.world.path, **extra}

    async def run(self, client: httpx2.AsyncClient, progress: Progress) -> None:
        version = 0
        headers = bearer(self.world.member.token)
        while not progress.stop:
            version += 1
            payload = base64.b64encode(os.urandom(18)).decode()
            response = await attempt(
                client,
                "POST",
                f"/atomic/v1/{self.slug}",
                params=self.params(version=version),
                json={"payload": payload},
                headers=headers,
            )
            if response is not None:
                assert response.status_code == 200, response.text
                body = response.json()
                assert body == {"status": "updated"}, (version, body)
                self.written[version] = payload
                self.acknowledged.append(version)
                progress.acked()
                continue
            # the process died: was the write committed before?
            self.unknown += 1
            current = await answered(
                client, "GET", f"/atomic/v1/{self.slug}", params=self.params(), headers=headers
            )
            stored = current.json()
            if stored["status"] == "no-data":
                assert version == 1
                version = 0
            elif stored["version"] == version:
                assert stored["payload"] == payload
                self.written[version] = payload
            else:
                assert stored["version"] == version - 1, (stored, version)
                version -= 1

    async def check(self, client: httpx2.AsyncClient) -> None:
        last = max(self.written)
        assert sorted(self.written) == list(range(1, last + 1)), "versions are not consecutive"
        assert self.acknowledged == sorted(set(self.acknowledged))
        assert set(self.acknowledged) <= set(self.written)
        stored = (
            await answered(
                client,
                "GET",
                f"/atomic/v1/{self.slug}",
                params=self.params(),
                headers=bearer(self.world.member.token),
            )
        ).json()
        assert stored["status"] == "out-of-sync"
        assert (stored["version"], stored["payload"]) == (last, self.written[last])


@dataclass
class StreamWriter:
    """Appends AddMember blocks, one per request, to its trustchain's application stream."""

    world: World
    chain: list[bytes] = field(default_factory=list)  # committed blocks after the derivation
    acknowledged: list[bytes] = field(default_factory=list)
    unknown: int = 0

    def url(self) -> str:
        return f"/v1/trustchain/{self.world.trustchain_id}/commands"

    async def tree(self, client: httpx2.AsyncClient) -> dict[str, str]:
        """The trustchain as the server returns it (path -> stream hex)."""
        answer: dict[str, str] = (
            await answered(
                client,
                "GET",
                f"/v1/trustchain/{self.world.trustchain_id}",
                headers=bearer(self.world.device.token),
            )
        ).json()
        return answer

    async def server_blocks(self, client: httpx2.AsyncClient) -> list[bytes]:
        tree = await self.tree(client)
        stream = decode_stream_blocks(bytes.fromhex(tree["m/16'"]))
        return [block.encoded for block in stream[1:]]  # after the Derive block

    async def run(self, client: httpx2.AsyncClient, progress: Progress) -> None:
        trustchain = self.world.trustchain
        derived = trustchain.streams[self.world.path][0].encode()
        xpriv = trustchain.xprivs[self.world.path]
        headers = bearer(self.world.device.token)
        while not progress.stop:
            parent = self.chain[-1] if self.chain else derived
            block = add_member_block(
                trustchain.device,
                decode_block(parent).hash(),
                xpriv,
                KeyPair.generate().public_key,
                f"member {len(self.chain)}",
            ).encode()
            body = {"path": self.world.path, "blocks": [block.hex()]}
            response = await attempt(client, "PUT", self.url(), json=body, headers=headers)
            if response is not None:
                assert response.status_code == 204, response.text
                self.chain.append(block)
                self.acknowledged.append(block)
                progress.acked()
                continue
            self.unknown += 1
            on_server = await self.server_blocks(client)
            if on_server == [*self.chain, block]:
                self.chain.append(block)  # committed just before the kill
            else:
                assert on_server == self.chain, "the stream is neither before nor after"

    async def check(self, client: httpx2.AsyncClient) -> None:
        assert await self.server_blocks(client) == self.chain
        position = {block: index for index, block in enumerate(self.chain)}
        assert [position[block] for block in self.acknowledged] == sorted(
            position[block] for block in self.acknowledged
        )
        tree = await self.tree(client)
        resolved = resolve_tree(bytes.fromhex(stream) for stream in tree.values())
        derived = self.world.trustchain.streams[self.world.path][0].encode()
        stream = resolved.derived[parse_path(self.world.path)]
        assert list(stream.block_hashes) == [sha256(block) for block in [derived, *self.chain]]
        assert not stream.closed


async def test_acknowledged_writes_survive_sigkill(database_url: str, tmp_path: Path) -> None:
    server = HeldSocketServer(
        tmp_path, database=database_url, public_url="http://ledgersync.test", log_level="warning"
    )
    await asyncio.to_thread(server.start)
    try:
        worlds = [await asyncio.to_thread(populate, server) for _ in range(2)]
        documents = [DocumentWriter(f"durable-{n}", worlds[0]) for n in range(3)]
        streams = [StreamWriter(world) for world in worlds]
        progress = Progress()
        progress.next_round()
        clients = [httpx2.AsyncClient(base_url=server.url, timeout=60) for _ in range(5)]
        writers = [
            asyncio.create_task(writer.run(client, progress))
            for writer, client in zip([*documents, *streams], clients, strict=True)
        ]
        try:
            for _ in range(KILLS):
                await wait_or_fail(progress.reached.wait(), writers)
                await asyncio.to_thread(server.kill)
                progress.next_round()
                await asyncio.to_thread(
                    server.restart, wait=False
                )  # requests queue until it is ready
            await wait_or_fail(progress.reached.wait(), writers)  # writes after the last kill
            progress.stop = True
            await asyncio.gather(*writers)
            await asyncio.to_thread(server.kill)  # a last kill with everything acknowledged
            await asyncio.to_thread(server.restart)
            for writer in [*documents, *streams]:
                await writer.check(clients[0])
        finally:
            progress.stop = True
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
            for client in clients:
                await client.aclose()
        assert server.launches == KILLS + 2
        writers_ = [*documents, *streams]
        print(
            "acknowledged",
            [len(w.acknowledged) for w in writers_],
            "unknown",
            [w.unknown for w in writers_],
        )
        # the kills did interrupt writes in flight (each writer always has one)
        assert sum(writer.unknown for writer in writers_) >= 1
        assert (
            sum(len(writer.acknowledged) for writer in [*documents, *streams])
            >= (KILLS + 1) * ACKS_PER_ROUND
        )
    finally:
        await asyncio.to_thread(server.close)
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def wait_or_fail(waiting: Any, writers: list[asyncio.Task[None]]) -> None:
    """Wait for ``waiting``; a writer that failed meanwhile fails the test at once."""
    waiter = asyncio.ensure_future(waiting)
    done, _ = await asyncio.wait(
        [waiter, *writers], timeout=120, return_when=asyncio.FIRST_COMPLETED
    )
    for task in writers:
        if task in done:
            task.result()  # raises the writer's assertion
            raise AssertionError("a writer stopped early")
    if waiter not in done:
        waiter.cancel()
        raise AssertionError("the writers made no progress in 120 s")
