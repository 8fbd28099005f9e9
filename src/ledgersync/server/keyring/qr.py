"""The QR-pairing relay: ``ws(s)://<server>/v1/qr?host=<66-hex ephemeral public key>``.

Two Ledger Live instances pair through a room named by the host's ephemeral key (the URL is
the QR code). The relay only moves frames; the peers encrypt end to end (docs/api.md, "QR
pairing relay"; docs/protocol.md, "QR pairing messages"). Rules:

* one room per ``host``, at most two peers; a third connection is refused (HTTP 403 on the
  handshake), as is a ``host`` that is not 33 bytes of hex or a room beyond ``qr_max_rooms``;
* every frame (text or binary) goes verbatim to the *other* peer only, never back to its
  sender; frames sent while alone in the room are held (at most ``MAX_HELD_FRAMES`` frames and
  ``MAX_HELD_BYTES`` bytes, the rest is dropped) and delivered, in order, to the peer that
  joins next. Ledger Live's host shows its QR code before its socket is open, so a quick
  candidate's first frame may arrive before the host is in the room;
* frames larger than ``ws_max_frame_bytes`` close the connection (1009, enforced by the
  websocket transport, see :mod:`ledgersync.server.run`);
* a room with no frame for ``qr_idle_timeout`` seconds is closed (1000, ``idle timeout``);
* when a peer leaves, the remaining one is disconnected (1000, ``peer left``).

Rooms live in this process's memory. With several processes on one PostgreSQL database, the
relay is given :class:`~.qr_shared.SharedRooms`: the two-peer limit is counted across processes
and frames, departures and activity travel between them through the broker (see
:mod:`.qr_shared`), so host and candidate may reach different processes. Frames are held only
in the process that received them: a partner joining through another process later does not
get them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from ...protocol import wire
from ..metrics import Metrics
from .qr_shared import RelayEvent, SharedRooms

HOST_KEY = re.compile(r"[0-9a-f]{66}")
CLOSE_NORMAL = wire.CLOSE_NORMAL
CLOSE_POLICY = wire.CLOSE_POLICY


#: Bounds on the frames held for a peer that has not joined yet.
MAX_HELD_FRAMES = 16
MAX_HELD_BYTES = 64 * 1024


@dataclass(frozen=True)
class HeldFrame:
    sender: WebSocket | None  # None: a frame from a peer in another process
    text: str | None
    data: bytes | None

    @property
    def size(self) -> int:
        return len(self.text.encode()) if self.text is not None else len(self.data or b"")


class RoomRefused(Exception):
    """The connection cannot join; the message says why (sent as the close reason)."""


@dataclass(eq=False)
class Room:
    host: str
    peers: list[WebSocket] = field(default_factory=list)
    last_activity: float = 0.0
    closed: bool = False
    watchdog: asyncio.Task[None] | None = None
    #: With shared rooms: each local peer's seat, and the reason the room closed.
    seats: dict[WebSocket, str] = field(default_factory=dict)
    close_reason: str = "peer left"
    last_touch: float = 0.0
    #: Peers whose socket is accepted and that were given the frames held for them.
    ready: list[WebSocket] = field(default_factory=list)
    held: list[HeldFrame] = field(default_factory=list)

    def other(self, peer: WebSocket) -> WebSocket | None:
        for candidate in self.ready:
            if candidate is not peer:
                return candidate
        return None

    def hold(self, frame: HeldFrame) -> None:
        held_bytes = sum(held.size for held in self.held)
        if len(self.held) < MAX_HELD_FRAMES and held_bytes + frame.size <= MAX_HELD_BYTES:
            self.held.append(frame)


class QrRelay:
    MAX_PEERS = 2

    def __init__(
        self,
        *,
        idle_timeout: float,
        max_rooms: int,
        metrics: Metrics,
        shared: SharedRooms | None = None,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_rooms = max_rooms
        self._metrics = metrics
        self._rooms: dict[str, Room] = {}
        self._shared = shared
        self._tasks: set[asyncio.Task[Any]] = set()
        if shared is not None:
            shared.on_event(self._on_shared_event)

    @property
    def room_count(self) -> int:
        return len(self._rooms)

    async def join(self, host: str, peer: WebSocket) -> Room:
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
        if self._shared is not None:
            seat = uuid.uuid4().hex
            room.peers.append(peer)  # holds the room while the seat is taken
            if not await self._shared.take_seat(host, seat):
                room.peers.remove(peer)
                if not room.peers:  # created for this peer only: drop it
                    await self.close_room(room, "room full")
                raise RoomRefused("this pairing session already has two peers")
            room.seats[peer] = seat
            return room
        room.peers.append(peer)
        return room

    async def relay(self, room: Room, peer: WebSocket) -> None:
        """Give ``peer`` the frames held for it, then forward its frames until it leaves or
        the room is closed."""
        await self._release_held(room, peer)
        while not room.closed:
            message = await peer.receive()
            if message["type"] == "websocket.disconnect":
                return
            room.last_activity = _now()
            other = room.other(peer)
            if other is None:
                if self._shared is not None and peer in room.seats:  # the partner may be
                    self._shared.publish_frame(  # in another process
                        room.host, room.seats[peer], message.get("text"), message.get("bytes")
                    )
                    await self._keep_seats(room)
                    self._metrics.qr_frames.inc()
                room.hold(HeldFrame(peer, message.get("text"), message.get("bytes")))
                continue
            try:
                if message.get("text") is not None:
                    await other.send_text(message["text"])
                elif message.get("bytes") is not None:
                    await other.send_bytes(message["bytes"])
            except (RuntimeError, OSError, WebSocketDisconnect):
                continue  # the other peer is going away; its own task cleans up
            self._metrics.qr_frames.inc()

    async def _release_held(self, room: Room, peer: WebSocket) -> None:
        # Until it is ready, frames for ``peer`` keep being held, so they arrive in order.
        while not room.closed:
            frames = [frame for frame in room.held if frame.sender is not peer]
            if not frames:
                room.ready.append(peer)
                return
            room.held = [frame for frame in room.held if frame.sender is peer]
            for frame in frames:
                if frame.text is not None:
                    await _send(peer, peer.send_text(frame.text))
                elif frame.data is not None:
                    await _send(peer, peer.send_bytes(frame.data))
                self._metrics.qr_frames.inc()

    async def leave(self, room: Room, peer: WebSocket) -> None:
        if peer in room.peers:
            room.peers.remove(peer)
        if peer in room.ready:
            room.ready.remove(peer)
        seat = room.seats.pop(peer, None)
        if seat is not None and self._shared is not None:
            await self._shared.release_seat(seat)
            self._shared.publish_left(room.host, seat, room.close_reason)
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
        if not room.closed:
            room.close_reason = reason
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
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- rooms shared with other processes (qr_shared.py) -------------------------------------

    async def _keep_seats(self, room: Room) -> None:
        """Refresh the room's seats now and then while frames flow (stale seats expire)."""
        assert self._shared is not None
        if _now() - room.last_touch >= self.idle_timeout / 4:
            room.last_touch = _now()
            await self._shared.touch(room.host)

    def _on_shared_event(self, event: RelayEvent) -> None:
        room = self._rooms.get(event.host)
        if room is None or room.closed or event.sender in room.seats.values():
            return
        if event.left is not None:
            self._spawn(self.close_room(room, event.left))
            return
        room.last_activity = _now()
        if not room.ready:
            room.hold(HeldFrame(None, event.text, event.data))
        for peer in room.ready:
            if event.text is not None:
                self._spawn(_send(peer, peer.send_text(event.text)))
            elif event.data is not None:
                self._spawn(_send(peer, peer.send_bytes(event.data)))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def relay_endpoint(websocket: WebSocket, relay: QrRelay) -> None:
    host = websocket.query_params.get("host", "").lower()
    try:
        room = await relay.join(host, websocket)
    except RoomRefused as exc:
        await websocket.close(code=CLOSE_POLICY, reason=str(exc))
        return
    try:
        await websocket.accept()
        await relay.relay(room, websocket)
    finally:
        await relay.leave(room, websocket)


async def _send(peer: WebSocket, sending: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):  # going away
        await sending


async def _close(peer: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):  # gone
        await peer.close(code=code, reason=reason)


def _now() -> float:
    return asyncio.get_running_loop().time()
