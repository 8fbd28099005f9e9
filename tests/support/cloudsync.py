"""Cloud Sync clients for tests: a logged-in member, the ``/atomic`` calls, notifications.

Tokens come from real logins over HTTP (``/v1/challenge`` + ``/v1/authenticate``) on a
trustchain built with the protocol layer; nothing here imports the server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx2
import websockets
from websockets.asyncio.client import ClientConnection

from ledgersync.protocol import KeyPair

from . import DEADLINE
from .keyring import Session, Trustchain, app_path, bearer, created_trustchain, login_member
from .payloads import b64


@dataclass
class Member:
    """A member of a fresh trustchain, logged in: its token grants (trustchain_id, path)."""

    client: httpx2.Client
    trustchain: Trustchain
    device: Session
    key: KeyPair
    session: Session

    @property
    def trustchain_id(self) -> str:
        return self.trustchain.id

    @property
    def path(self) -> str:
        return app_path(0)

    @property
    def token(self) -> str:
        return self.session.token

    def query(self, **extra: Any) -> dict[str, Any]:
        return {"id": self.trustchain_id, "path": self.path, **extra}

    def get(self, slug: str = "live", **extra: Any) -> httpx2.Response:
        return self.client.get(
            f"/atomic/v1/{slug}", params=self.query(**extra), headers=bearer(self.token)
        )

    def post(
        self, version: int, payload: Any, slug: str = "live", info: str | None = None
    ) -> httpx2.Response:
        headers = bearer(self.token)
        if info is not None:
            headers["X-Ledger-Client-Version"] = info
        body = payload if isinstance(payload, dict) else {"payload": payload}
        return self.client.post(
            f"/atomic/v1/{slug}", params=self.query(version=version), json=body, headers=headers
        )

    def delete(self, slug: str = "live") -> httpx2.Response:
        return self.client.delete(
            f"/atomic/v1/{slug}", params=self.query(), headers=bearer(self.token)
        )


async def race_writers(member: Member, urls: list[str], attempts: int) -> list[tuple[int, str]]:
    """One writer per URL, all on ``member``'s document, each ``attempts`` times reading the
    version then writing version + 1 with a unique payload. Returns the accepted writes as
    (version, payload)."""
    accepted: list[tuple[int, str]] = []
    params = {"id": member.trustchain_id, "path": member.path}
    headers = bearer(member.token)

    async def writer(number: int, client: httpx2.AsyncClient) -> None:
        for attempt in range(attempts):
            current = (await client.get("/atomic/v1/live", params=params, headers=headers)).json()
            version = current.get("version", 0) + 1
            payload = b64(f"writer {number} attempt {attempt}")
            response = await client.post(
                "/atomic/v1/live",
                params={**params, "version": version},
                json={"payload": payload},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            if response.json()["status"] == "updated":
                accepted.append((version, payload))
            else:  # refused: the server had moved on
                assert response.json()["version"] >= version - 1

    clients = [httpx2.AsyncClient(base_url=url, timeout=30) for url in urls]
    try:
        await asyncio.gather(*(writer(n, c) for n, c in enumerate(clients)))
    finally:
        for client in clients:
            await client.aclose()
    return accepted


def new_member(client: httpx2.Client) -> Member:
    trustchain, device, keys = created_trustchain(client, members=1)
    session = login_member(client, keys[0], trustchain.id)
    return Member(client, trustchain, device, keys[0], session)


async def subscribe(ws_url: str, token: str, slug: str = "live") -> ClientConnection:
    """A notifications socket that has sent its token."""
    socket = await websockets.connect(f"{ws_url}/atomic/v1/{slug}/notifications")
    await socket.send(token)
    return socket


async def next_frame(socket: ClientConnection, *, skip_pings: bool = True) -> str:
    """The next frame other than ``ping`` (answered), within :data:`DEADLINE`."""
    async with asyncio.timeout(DEADLINE):
        while True:
            frame = await socket.recv()
            assert isinstance(frame, str), frame
            if frame == "ping" and skip_pings:
                await socket.send("pong")
                continue
            return frame


async def version_pushed(socket: ClientConnection, version: int) -> None:
    """Wait (within :data:`DEADLINE`) for ``version`` to be pushed. Earlier versions may come
    first: delivery is at least once, and a write's notification may still be travelling
    between processes when a socket subscribes and is sent the current version."""
    async with asyncio.timeout(DEADLINE):
        while True:
            frame = await next_frame(socket)
            if int(frame) == version:
                return
            assert int(frame) < version, (frame, version)


async def closed(socket: ClientConnection) -> tuple[int | None, str | None]:
    """Wait (within :data:`DEADLINE`) for the server to close; its code and reason."""
    async with asyncio.timeout(DEADLINE):
        try:
            while True:
                await socket.recv()
        except websockets.ConnectionClosed as exc:
            if exc.rcvd is None:
                return None, None
            return exc.rcvd.code, exc.rcvd.reason
