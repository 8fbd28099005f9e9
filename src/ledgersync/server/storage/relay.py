"""Seats of QR-relay rooms shared by several server processes (PostgreSQL deployments).

A pairing room holds at most two peers, whichever processes they reached. Each peer takes a
*seat* (a row naming its room) when it joins and gives it back when it leaves. Taking a seat
is one transaction holding a transaction-scoped advisory lock on the room, so two processes
cannot both take the second seat. Seats not refreshed for ``stale_after`` seconds (the relay
refreshes them while frames flow) belong to peers of a process that died: they are dropped
when the room is joined again.
"""

from __future__ import annotations

from .database import Database

#: Namespace of the room locks among PostgreSQL advisory locks (two-key form).
_ADVISORY_NAMESPACE = 0x4C535152  # "LSQR"


class RelaySeatStore:
    def __init__(self, database: Database, *, max_seats: int) -> None:
        self.database = database
        self.max_seats = max_seats

    async def take(self, host: str, seat: str, now: int, stale_after: int) -> bool:
        """Take a seat in room ``host``; False if the room is full."""
        async with self.database.transaction() as connection:
            await connection.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", _ADVISORY_NAMESPACE, host
            )
            await connection.execute(
                "DELETE FROM relay_seats WHERE host = $1 AND seen_at < $2", host, now - stale_after
            )
            row = await connection.fetchrow(
                "SELECT count(*) FROM relay_seats WHERE host = $1", host
            )
            if row is not None and int(row[0]) >= self.max_seats:
                return False
            await connection.execute(
                "INSERT INTO relay_seats (seat, host, seen_at) VALUES ($1, $2, $3)", seat, host, now
            )
        return True

    async def touch(self, host: str, now: int) -> None:
        async with self.database.transaction() as connection:
            await connection.execute(
                "UPDATE relay_seats SET seen_at = $2 WHERE host = $1", host, now
            )

    async def release(self, seat: str) -> None:
        async with self.database.transaction() as connection:
            await connection.execute("DELETE FROM relay_seats WHERE seat = $1", seat)
