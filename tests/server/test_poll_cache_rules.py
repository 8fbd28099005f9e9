"""The version cache's rules (``server/cloudsync/versions.py``), on its own: what it learns,
what it forgets, when it refuses to answer."""

from __future__ import annotations

from ledgersync.server.cloudsync.versions import VersionCache
from ledgersync.server.storage import DocumentKey
from ledgersync.server.storage.changes import document_version, trustchain_removed

KEY = DocumentKey("live", "00aa", "m/0'/16'/0'")
OTHER = DocumentKey("live", "00aa", "m/0'/16'/1'")


def announce(cache: VersionCache, key: DocumentKey, version: int) -> None:
    cache.on_change(document_version(key.slug, key.trustchain_id, key.path, version))


def test_announcements_set_and_forget_versions() -> None:
    cache = VersionCache()
    assert cache.version(KEY) is None
    announce(cache, KEY, 3)
    assert cache.version(KEY) == 3
    announce(cache, KEY, 0)  # deleted
    assert cache.version(KEY) is None
    announce(cache, KEY, 2)  # written again, from a lower version
    announce(cache, OTHER, 9)
    cache.on_change(trustchain_removed(KEY.trustchain_id))
    assert cache.version(KEY) is None and cache.version(OTHER) is None


def test_a_read_is_remembered_only_if_nothing_was_announced_meanwhile() -> None:
    cache = VersionCache()
    began = cache.epoch
    cache.observed(KEY, 4, began)
    assert cache.version(KEY) == 4
    began = cache.epoch
    announce(cache, OTHER, 1)  # during the read: it may predate any announcement
    cache.observed(KEY, 5, began)
    assert cache.version(KEY) == 4
    cache.observed(KEY, None, cache.epoch)  # read: no document
    assert cache.version(KEY) is None


def test_nothing_is_trusted_while_announcements_may_be_missed() -> None:
    cache = VersionCache()
    announce(cache, KEY, 3)
    cache.on_continuity(False)
    assert cache.version(KEY) is None
    announce(cache, KEY, 4)
    began = cache.epoch
    cache.observed(KEY, 4, began)
    assert cache.version(KEY) is None
    cache.on_continuity(True)  # listening again: starts empty, reads begun before are stale
    cache.observed(KEY, 4, began)
    assert cache.version(KEY) is None
    announce(cache, KEY, 5)
    assert cache.version(KEY) == 5


def test_sqlite_the_cache_answers_only_while_the_process_is_alone() -> None:
    alone = [True]
    cache = VersionCache(sole_process=lambda: alone[0])
    announce(cache, KEY, 3)
    assert cache.version(KEY) == 3
    alone[0] = False
    assert cache.version(KEY) is None
    cache.observed(KEY, 7, cache.epoch)
    assert cache.version(KEY) is None


def test_a_malformed_announcement_empties_the_cache() -> None:
    cache = VersionCache()
    announce(cache, KEY, 3)
    cache.on_change("not json")
    assert cache.version(KEY) is None


def test_the_cache_is_bounded() -> None:
    cache = VersionCache(max_documents=2)
    announce(cache, KEY, 1)
    announce(cache, OTHER, 1)
    announce(cache, KEY, 2)  # known already: no growth
    assert cache.version(KEY) == 2
    third = DocumentKey("live", "00bb", "m/0'/16'/0'")
    announce(cache, third, 1)  # over the bound: starts again
    assert cache.version(third) == 1 and cache.version(KEY) is None
