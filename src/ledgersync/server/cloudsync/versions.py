"""The latest committed version of each document, as this process knows it: most polls
(``GET`` with the client's version, answered ``up-to-date``) change nothing, and are answered
from here without a database round trip.

What the cache holds is only ever learned from committed state:

* **changes**: every transaction changing a document announces it (:mod:`~..storage.changes`);
  the cache receives each announcement in commit order, those of other processes included
  (PostgreSQL: the broker's LISTEN connection, ``subscribe_ordered``), and takes the last one
  as the truth: a write sets the version, a delete or a closed stream forgets the document, a
  trustchain deletion forgets all of its documents;
* **reads**: a ``GET`` that went to the database records what it found, unless anything was
  announced since the read began (the *epoch* moved): the read may then be older than the
  announcement, and the next read will tell.

It is only used while it can be kept true:

* PostgreSQL: while the broker receives the other processes' announcements. When its LISTEN
  connection drops (announcements may be missed) the cache is emptied and unused; once it
  listens again the cache refills from reads begun after that;
* SQLite: while this process is the only one on the database file
  (:meth:`~..storage.database.SQLiteDatabase.sole_process`); another process's writes would
  not be announced here.

Across processes the announcement of a commit reaches the others a moment after it was
acknowledged (one PostgreSQL notification, usually well under a millisecond). So that a poll
reaching another process within that moment is not confirmed stale, the caller
(:func:`~.documents.read`) first has the broker catch up
(:meth:`~..broker.PostgresBroker.caught_up`: one round trip on the LISTEN connection, shared
by every poll waiting then) and looks again.

Only ``up-to-date`` is answered from here: a different version (the client is behind, or the
document is gone) goes to the database, whose answer carries the document.
"""

from __future__ import annotations

from collections.abc import Callable

from ..storage import DocumentKey, DocumentVersion, TrustchainRemoved, parse_change

#: Documents remembered at most; past it the cache starts again empty.
MAX_DOCUMENTS = 200_000


class VersionCache:
    __slots__ = ("_epoch", "_max", "_receiving", "_size", "_sole_process", "_versions")

    def __init__(
        self,
        *,
        sole_process: Callable[[], bool] | None = None,
        max_documents: int = MAX_DOCUMENTS,
    ) -> None:
        """``sole_process``: the cache is used only while it answers True (SQLite); None when
        other processes' changes are announced through the broker (PostgreSQL)."""
        #: trustchain id -> (slug, path) -> version (never 0: deleted documents are forgotten)
        self._versions: dict[str, dict[tuple[str, str], int]] = {}
        self._size = 0
        self._max = max_documents
        self._receiving = True
        self._epoch = 0
        self._sole_process = sole_process

    @property
    def epoch(self) -> int:
        """Moves with every announcement: pass it from before a read to :meth:`observed`."""
        return self._epoch

    def _usable(self) -> bool:
        return self._receiving and (self._sole_process is None or self._sole_process())

    def version(self, key: DocumentKey) -> int | None:
        """The document's committed version if this process knows it, else None."""
        if not self._usable():
            return None
        documents = self._versions.get(key.trustchain_id)
        return None if documents is None else documents.get((key.slug, key.path))

    def observed(self, key: DocumentKey, version: int | None, epoch: int) -> None:
        """A read begun at ``epoch`` found ``version`` (None: no document)."""
        if epoch != self._epoch or not self._usable():
            return
        if version is None:
            self._forget(key.trustchain_id, key.slug, key.path)
        else:
            self._set(key.trustchain_id, key.slug, key.path, version)

    def on_change(self, message: str) -> None:
        """An announcement (broker handler, in commit order)."""
        self._epoch += 1
        change = parse_change(message)
        if isinstance(change, DocumentVersion):
            if change.version == 0:
                self._forget(change.trustchain_id, change.slug, change.path)
            else:
                self._set(change.trustchain_id, change.slug, change.path, change.version)
        elif isinstance(change, TrustchainRemoved):
            removed = self._versions.pop(change.trustchain_id, None)
            self._size -= 0 if removed is None else len(removed)
        else:  # unreadable: whatever it said is unknown
            self.clear()

    def on_continuity(self, receiving: bool) -> None:
        """The broker may miss announcements (False) or receives them again (True)."""
        self._receiving = receiving
        self.clear()

    def clear(self) -> None:
        self._epoch += 1
        self._versions.clear()
        self._size = 0

    def _set(self, trustchain_id: str, slug: str, path: str, version: int) -> None:
        documents = self._versions.get(trustchain_id)
        if documents is None or (slug, path) not in documents:
            if self._size >= self._max:
                self.clear()
                documents = None
            if documents is None:
                documents = self._versions[trustchain_id] = {}
            self._size += 1
        documents[(slug, path)] = version

    def _forget(self, trustchain_id: str, slug: str, path: str) -> None:
        documents = self._versions.get(trustchain_id)
        if documents is not None and documents.pop((slug, path), None) is not None:
            self._size -= 1
            if not documents:
                del self._versions[trustchain_id]
