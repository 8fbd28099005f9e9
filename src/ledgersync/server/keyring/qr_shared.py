"""QR-relay rooms spanning several server processes (PostgreSQL deployments).

With one process (SQLite) a room lives in that process's memory (:mod:`.qr`). With several
processes on one PostgreSQL database, the host of a pairing and its candidate may reach
different processes; :class:`SharedRooms` lets :class:`~.qr.QrRelay` keep the room's rules
across them:

* **two peers per room**, counted across processes: each peer takes a seat in the
  ``relay_seats`` table (:class:`~ledgersync.server.storage.relay.RelaySeatStore`); a third
  is refused as before;
* **frames** from a peer whose partner is not in the same process are published on the
  broker's QR channel (PostgreSQL ``NOTIFY``) and sent, verbatim, text or binary, by the
  process that holds the other peer; the sender never gets its own frame back;
* **leaving**: when a peer leaves (or its room is closed for idleness), a ``left`` event
  closes the partner, wherever it is, with the same reason;
* **idle timeout**: every frame of either peer counts as activity in both processes.

Frames larger than 5000 bytes are cut into several notifications by the broker (PostgreSQL
caps one at 8000 bytes) and reassembled; the relay's own limit (``ws_max_frame_bytes``,
64 KiB by default) applies unchanged.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..broker import QR_CHANNEL, Broker
from ..clock import Clock
from ..storage import RelaySeatStore

log = logging.getLogger("ledgersync.qr")

#: Seats not refreshed for this long beyond the idle timeout belong to a dead process.
STALE_MARGIN = 60


@dataclass(frozen=True)
class RelayEvent:
    """A frame (``text`` or ``data``) or a departure (``left`` = the close reason)."""

    host: str
    sender: str
    text: str | None = None
    data: bytes | None = None
    left: str | None = None


class SharedRooms:
    def __init__(
        self, *, broker: Broker, seats: RelaySeatStore, clock: Clock, idle_timeout: float
    ) -> None:
        self._broker = broker
        self._seats = seats
        self._clock = clock
        self._stale_after = int(idle_timeout) + STALE_MARGIN

    def on_event(self, handler: Callable[[RelayEvent], None]) -> None:
        def decode(message: str) -> None:
            try:
                raw = json.loads(message)
                event = RelayEvent(
                    host=str(raw["h"]),
                    sender=str(raw["s"]),
                    text=raw.get("t"),
                    data=base64.b64decode(raw["b"]) if "b" in raw else None,
                    left=raw.get("l"),
                )
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed relay event")
                return
            handler(event)

        self._broker.subscribe(QR_CHANNEL, decode)

    async def take_seat(self, host: str, seat: str) -> bool:
        return await self._seats.take(host, seat, int(self._clock()), self._stale_after)

    async def release_seat(self, seat: str) -> None:
        await self._seats.release(seat)

    async def touch(self, host: str) -> None:
        await self._seats.touch(host, int(self._clock()))

    def publish_frame(self, host: str, sender: str, text: str | None, data: bytes | None) -> None:
        event: dict[str, str] = {"h": host, "s": sender}
        if text is not None:
            event["t"] = text
        elif data is not None:
            event["b"] = base64.b64encode(data).decode()
        self._broker.publish(QR_CHANNEL, json.dumps(event))

    def publish_left(self, host: str, sender: str, reason: str) -> None:
        self._broker.publish(QR_CHANNEL, json.dumps({"h": host, "s": sender, "l": reason}))
