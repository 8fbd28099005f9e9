"""The QR-pairing relay: ``ws(s)://<server>/v1/qr?host=<66-hex ephemeral public key>``.

Two Ledger Live instances pair through a room named by the host's ephemeral key (the URL is
the QR code). The relay only moves frames; the peers encrypt end to end (``ledger-sync-api.md``
§6). Rules:

* one room per ``host``, at most two peers; a third connection is refused (HTTP 403 on the
  handshake), as is a ``host`` that is not 33 bytes of hex or a room beyond ``qr_max_rooms``;
* every frame (text or binary) goes verbatim to the *other* peer only, never back to its
  sender; a frame sent while alone in the room is dropped;
* frames larger than ``ws_max_frame_bytes`` close the connection (1009, enforced by the
  websocket transport, see :mod:`ledgersync.server.run`);
* a room with no frame for ``qr_idle_timeout`` seconds is closed (1000, ``idle timeout``);
* when a peer leaves, the remaining one is disconnected (1000, ``peer left``).

Rooms live in this process's memory: all peers of a pairing must reach the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field

from starlette.websockets import WebSocket

from ..metrics import Metrics

HOST_KEY = re.compile(r"[0-9a-f]{66}")
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008


class RoomRefused(Exception):
    """The connection cannot join; the message says why (sent as the close reason)."""


@dataclass(eq=False)
class Room:
    host: str
    peers: list[WebSocket] = field(default_factory=list)
    last_activity: float = 0.0
    closed: bool = False
    watchdog: asyncio.Task[None] | None = None

    def other(self, peer: WebSocket) -> WebSocket | None:
        for candidate in self.peers:
            if candidate is not peer:
                return candidate
        return None


class QrRelay:
    MAX_PEERS = 2

    def __init__(self, *, idle_timeout: float, max_rooms: int, metrics: Metrics) -> None:
        self.idle_timeout = idle_timeout
        self.max_rooms = max_rooms
        self._metrics = metrics
        self._rooms: dict[str, Room] = {}

    @property
    def room_count(self) -> int:
        return len(self._rooms)

    def join(self, host: str, peer: WebSocket) -> Room:
        if not HOST_KEY.fullmatch(host):
            raise RoomRefused("host must be a 33-byte public key in hex")
        room = self._rooms.get(host)
        if room is None:
            if len(self._rooms) >= self.max_rooms:
                raise RoomRefused("too many pairing sessions, try again later")
            room = self._rooms[host] = Room(host, last_activity=_now())
            room.watchdog = asyncio.create_task(self._close_when_idle(room))
            self._metrics.qr_rooms.set(len(self._rooms))
        if len(room.peers) >= self.MAX_PEERS:
            raise RoomRefused("this pairing session already has two peers")
        room.peers.append(peer)
        return room

    async def relay(self, room: Room, peer: WebSocket) -> None:
        """Forward ``peer``'s frames until it leaves or the room is closed."""
        while not room.closed:
            message = await peer.receive()
            if message["type"] == "websocket.disconnect":
                return
            room.last_activity = _now()
            other = room.other(peer)
            if other is None:
                continue
            try:
                if message.get("text") is not None:
                    await other.send_text(message["text"])
                elif message.get("bytes") is not None:
                    await other.send_bytes(message["bytes"])
            except (RuntimeError, OSError):
                continue  # the other peer is going away; its own task cleans up
            self._metrics.qr_frames.inc()

    async def leave(self, room: Room, peer: WebSocket) -> None:
        if peer in room.peers:
            room.peers.remove(peer)
        if not room.closed:
            await self.close_room(room, "peer left")

    async def _close_when_idle(self, room: Room) -> None:
        while not room.closed:
            remaining = room.last_activity + self.idle_timeout - _now()
            if remaining <= 0:
                await self.close_room(room, "idle timeout")
                return
            await asyncio.sleep(remaining)

    async def close_room(self, room: Room, reason: str) -> None:
        room.closed = True
        if room.watchdog is not None and room.watchdog is not asyncio.current_task():
            room.watchdog.cancel()
        if self._rooms.get(room.host) is room:
            del self._rooms[room.host]
            self._metrics.qr_rooms.set(len(self._rooms))
        for peer in list(room.peers):
            await _close(peer, CLOSE_NORMAL, reason)

    async def close_all(self) -> None:
        for room in list(self._rooms.values()):
            await self.close_room(room, "server shutting down")


async def relay_endpoint(websocket: WebSocket, relay: QrRelay) -> None:
    host = websocket.query_params.get("host", "").lower()
    try:
        room = relay.join(host, websocket)
    except RoomRefused as exc:
        await websocket.close(code=CLOSE_POLICY, reason=str(exc))
        return
    try:
        await websocket.accept()
        await relay.relay(room, websocket)
    finally:
        await relay.leave(room, websocket)


async def _close(peer: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, OSError):  # already closed or gone
        await peer.close(code=code, reason=reason)


def _now() -> float:
    return asyncio.get_running_loop().time()
