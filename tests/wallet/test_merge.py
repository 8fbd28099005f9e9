"""The three-way merge, entry by entry, with the expected results written out by hand."""

from __future__ import annotations

import copy
from typing import Any

from ledgersync.wallet import LABELS_KEY, changes, merge

A = {
    "id": "js:2:ethereum:0xaaa:",
    "currencyId": "ethereum",
    "freshAddress": "0xaaa",
    "seedIdentifier": "0xaaa",
    "derivationMode": "",
    "index": 0,
}
B = A | {
    "id": "js:2:ethereum:0xbbb:",
    "freshAddress": "0xbbb",
    "seedIdentifier": "0xbbb",
    "index": 1,
}
C = A | {"id": "js:2:bitcoin:xpubC:native_segwit", "currencyId": "bitcoin", "index": 0}


def label(kind: str, ref: str, text: str, at: int) -> dict[str, Any]:
    return {"record": {"type": kind, "ref": ref, "label": text}, "updatedAt": at}


def test_nothing_changed_gives_the_remote_verbatim() -> None:
    base = {"accounts": [A, B], "accountNames": {A["id"]: "x"}, "future": {"k": [1]}}
    remote = copy.deepcopy(base)
    result = merge(base, base, remote)
    assert result.document == remote and not result.conflicts


def test_concurrent_renames_of_two_accounts_both_survive() -> None:
    base = {"accounts": [A, B], "accountNames": {}}
    local = {"accounts": [A, B], "accountNames": {A["id"]: "Savings"}}
    remote = {"accounts": [A, B], "accountNames": {B["id"]: "Trading"}}
    result = merge(base, local, remote)
    assert result.document["accountNames"] == {B["id"]: "Trading", A["id"]: "Savings"}
    assert not result.conflicts


def test_same_entry_renamed_differently_the_remote_wins_and_is_reported() -> None:
    base = {"accounts": [A], "accountNames": {A["id"]: "old"}}
    local = {"accounts": [A], "accountNames": {A["id"]: "mine"}}
    remote = {"accounts": [A], "accountNames": {A["id"]: "theirs"}}
    result = merge(base, local, remote)
    assert result.document["accountNames"] == {A["id"]: "theirs"}
    [conflict] = result.conflicts
    assert (conflict.module, conflict.entry, conflict.local, conflict.remote, conflict.winner) == (
        "accountNames",
        A["id"],
        "mine",
        "theirs",
        "remote",
    )


def test_same_change_on_both_sides_is_no_conflict() -> None:
    base = {"accountNames": {}}
    both = {"accountNames": {A["id"]: "same"}}
    result = merge(base, both, copy.deepcopy(both))
    assert result.document == both and not result.conflicts


def test_a_deletion_on_one_side_deletes() -> None:
    base = {"accounts": [A, B], "accountNames": {A["id"]: "a", B["id"]: "b"}}
    local = {"accounts": [A, B, C], "accountNames": {A["id"]: "a", B["id"]: "b"}}
    remote = {"accounts": [A], "accountNames": {A["id"]: "a"}}  # B removed remotely
    result = merge(base, local, remote)
    assert result.document == {"accounts": [A, C], "accountNames": {A["id"]: "a"}}


def test_delete_against_edit_without_timestamps_the_remote_wins() -> None:
    base = {"accounts": [A], "accountNames": {A["id"]: "a"}}
    local = {"accounts": [A], "accountNames": {}}  # deleted here
    remote = {"accounts": [A], "accountNames": {A["id"]: "renamed"}}
    result = merge(base, local, remote)
    assert result.document["accountNames"] == {A["id"]: "renamed"}
    assert [c.winner for c in result.conflicts] == ["remote"]


def test_labels_the_later_edit_wins_ties_to_the_remote() -> None:
    base = {LABELS_KEY: [label("tx", "t1", "base", 1), label("tx", "t2", "base", 1)]}
    local = {LABELS_KEY: [label("tx", "t1", "mine later", 30), label("tx", "t2", "mine", 20)]}
    remote = {LABELS_KEY: [label("tx", "t1", "theirs", 20), label("tx", "t2", "theirs", 20)]}
    result = merge(base, local, remote)
    texts = {e["record"]["ref"]: e["record"]["label"] for e in result.document[LABELS_KEY]}
    assert texts == {"t1": "mine later", "t2": "theirs"}
    assert sorted((c.entry, c.winner) for c in result.conflicts) == [
        ("tx t1", "local"),
        ("tx t2", "remote"),
    ]


def test_labels_an_edit_beats_a_deletion() -> None:
    base = {LABELS_KEY: [label("addr", "bc1q", "base", 1), label("addr", "bc1r", "base", 1)]}
    local = {LABELS_KEY: [label("addr", "bc1q", "edited", 5)]}  # bc1r deleted here
    remote = {LABELS_KEY: [label("addr", "bc1r", "edited there", 5)]}  # bc1q deleted there
    result = merge(base, local, remote)
    texts = {e["record"]["ref"]: e["record"]["label"] for e in result.document[LABELS_KEY]}
    assert texts == {"bc1q": "edited", "bc1r": "edited there"}
    assert len(result.conflicts) == 2


def test_joining_with_no_base_is_a_union() -> None:
    local = {"accounts": [C], "accountNames": {C["id"]: "cold"}}
    remote = {"accounts": [A], "accountNames": {A["id"]: "hot"}}
    result = merge(None, local, remote)
    assert result.document == {
        "accounts": [A, C],
        "accountNames": {A["id"]: "hot", C["id"]: "cold"},
    }


def test_recent_addresses_are_renumbered_from_zero() -> None:
    base = {"recentAddresses": {"ethereum": [{"address": "0x1", "index": 0, "lastUsed": 10}]}}
    local = {
        "recentAddresses": {
            "ethereum": [
                {"address": "0x2", "index": 0, "lastUsed": 30},
                {"address": "0x1", "index": 1, "lastUsed": 10},
            ]
        }
    }
    remote = {
        "recentAddresses": {
            "ethereum": [
                {"address": "0x3", "index": 0, "lastUsed": 20},
                {"address": "0x1", "index": 1, "lastUsed": 10},
            ]
        }
    }
    result = merge(base, local, remote)
    assert result.document["recentAddresses"] == {
        "ethereum": [
            {"address": "0x2", "index": 0, "lastUsed": 30},
            {"address": "0x3", "index": 1, "lastUsed": 20},
            {"address": "0x1", "index": 2, "lastUsed": 10},
        ]
    }


def test_unknown_modules_are_kept_and_merged_whole() -> None:
    base = {"future": {"v": 1}, "other": [1]}
    local = {"future": {"v": 2}, "other": [1]}
    remote = {"future": {"v": 1}, "other": [1, 2], "brandNew": "x"}
    result = merge(base, local, remote)
    assert result.document == {"future": {"v": 2}, "other": [1, 2], "brandNew": "x"}


def test_a_quarantined_remote_module_is_kept_verbatim_and_the_rest_merges() -> None:
    broken = [{"id": "x", "currencyId": "ethereum"}]  # no freshAddress, no index…
    base = {"accounts": [A], "accountNames": {}}
    local = {"accounts": [A, B], "accountNames": {A["id"]: "a"}}
    remote = {"accounts": broken, "accountNames": {B["id"]: "b"}}
    result = merge(base, local, remote)
    assert result.document["accounts"] == broken
    assert result.document["accountNames"] == {B["id"]: "b", A["id"]: "a"}
    assert [(c.module, c.winner) for c in result.conflicts] == [("accounts", "remote")]


def test_changes_lists_entries() -> None:
    before = {"accountNames": {A["id"]: "a", B["id"]: "b"}}
    after = {"accountNames": {A["id"]: "A", C["id"]: "c"}}
    found = {(c.entry, c.kind) for c in changes(before, after)}
    assert found == {(A["id"], "changed"), (C["id"], "added"), (B["id"], "removed")}


def test_newer_ledger_modules_round_trip_and_merge() -> None:
    base = {
        "settings": {"language": "en", "counterValue": "USD"},
        "contacts": {"me": {"name": "Ann", "addresses": []}, "contactGroups": [{"id": "g1"}]},
        "ageAttestation": {"minimumAge": 18, "proofHash": "h"},
    }
    local = copy.deepcopy(base)
    local["settings"]["language"] = "fr"
    local["contacts"]["contactGroups"].append({"id": "g2", "name": "family"})
    remote = copy.deepcopy(base)
    remote["settings"]["counterValue"] = "EUR"
    remote["contacts"]["me"]["name"] = "Anne"
    remote["ageAttestation"] = {"minimumAge": 21, "proofHash": "h2"}
    result = merge(base, local, remote)
    assert not result.conflicts
    assert result.document == {
        "settings": {"language": "fr", "counterValue": "EUR"},
        "contacts": {
            "me": {"name": "Anne", "addresses": []},
            "contactGroups": [{"id": "g1"}, {"id": "g2", "name": "family"}],
        },
        "ageAttestation": {"minimumAge": 21, "proofHash": "h2"},
    }
    # Unchanged here: the server's modules come back byte for byte.
    assert merge(remote, remote, remote).document == remote
