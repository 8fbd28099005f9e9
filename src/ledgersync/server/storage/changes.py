"""Messages describing committed changes of Cloud Sync documents, and where they go.

Every transaction that changes a document (a write, a delete, a stream closing, a trustchain
deletion) describes the change in a message (:func:`document_version`,
:func:`trustchain_removed`) and hands it to the database's :class:`ChangeFeed` twice: inside
the transaction (:meth:`ChangeFeed.in_transaction`: PostgreSQL sends it with ``pg_notify`` in
the same transaction, so that other processes receive it if and only if the change commits,
in commit order) and once committed (:meth:`ChangeFeed.committed`, called in commit order,
on the event loop: this process's notification subscribers and version cache). The database
layer does both (:mod:`.database`): a caller never forgets one, and a caller cancelled after
the commit does not skip the second. Then, before the caller is answered, it waits until
this process has received back what it sent (:meth:`ChangeFeed.received`): the version cache
learns changes only from that stream, in commit order, so a change is in this process's
cache before the request that made it is answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol


class ChangeFeed(Protocol):
    def in_transaction(self, message: str) -> tuple[str, str] | None:
        """The (channel, payload) to ``pg_notify`` with the change, None for none."""
        ...

    def committed(self, message: str) -> None:
        """The change ``message`` describes is committed (called in commit order)."""
        ...

    async def received(self, notifications: list[tuple[str, str]]) -> None:
        """Return once the ``notifications`` a committed transaction sent have come back to
        this process (or cannot: its listener is down)."""
        ...


class NoFeed:
    """Nobody listens (tests of the storage alone, command-line tools)."""

    def in_transaction(self, message: str) -> tuple[str, str] | None:
        return None

    def committed(self, message: str) -> None:
        return None

    async def received(self, notifications: list[tuple[str, str]]) -> None:
        return None


@dataclass(frozen=True)
class DocumentVersion:
    """The document's version is now ``version`` (0: it was deleted)."""

    slug: str
    trustchain_id: str
    path: str
    version: int


@dataclass(frozen=True)
class TrustchainRemoved:
    """The trustchain was deleted, and every document in it."""

    trustchain_id: str


Change = DocumentVersion | TrustchainRemoved


def document_version(slug: str, trustchain_id: str, path: str, version: int) -> str:
    return json.dumps([slug, trustchain_id, path, version])


def trustchain_removed(trustchain_id: str) -> str:
    return json.dumps({"trustchain_removed": trustchain_id})


def parse_change(message: str) -> Change | None:
    """The change a message describes, None if it is malformed."""
    try:
        value = json.loads(message)
    except ValueError:
        return None
    if isinstance(value, dict):
        removed = value.get("trustchain_removed")
        return TrustchainRemoved(removed) if isinstance(removed, str) else None
    if not isinstance(value, list) or len(value) != 4:
        return None
    slug, trustchain_id, path, version = value
    if not (isinstance(slug, str) and isinstance(trustchain_id, str) and isinstance(path, str)):
        return None
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        return None
    return DocumentVersion(slug, trustchain_id, path, version)
