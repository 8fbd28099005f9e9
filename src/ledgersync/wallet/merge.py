"""Three-way merge of synced documents: per module, per entry, nothing lost silently.

``merge(base, local, remote)``: ``base`` is the last document both sides agreed on (the last
synced remote document), ``local`` this instance's data, ``remote`` the server's document. For
each module, and in it for each entry (see :mod:`.document`):

* changed on one side only → that side's value (a deletion is a change);
* changed on both sides to the same value → that value;
* changed on both sides differently → a :class:`Conflict`, resolved by the module's rule (labels:
  the later edit, an edit beats a deletion, ties to the remote; every other module: the
  remote, which committed first) and reported with both values.

A module unchanged on one side is taken verbatim from the other, so a round that changes
nothing produces the server's document byte for byte. A quarantined module (its content does
not validate) is never merged entry by entry: the remote content is kept as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .document import Document, EntryKey, Module, module_for, module_problem, same

MISSING: Any = None  # an absent module or entry


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both sides changed one entry differently; ``winner`` is the side kept."""

    module: str
    entry: str
    local: Any
    remote: Any
    winner: str

    @property
    def value(self) -> Any:
        return self.local if self.winner == "local" else self.remote

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "entry": self.entry,
            "local": self.local,
            "remote": self.remote,
            "winner": self.winner,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One entry that differs between two documents: ``added``, ``changed`` or ``removed``."""

    module: str
    entry: str
    kind: str
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "entry": self.entry, "kind": self.kind, "value": self.value}


@dataclass(frozen=True)
class MergeResult:
    document: Document
    conflicts: list[Conflict] = field(default_factory=list)


def merge(base: Document | None, local: Document | None, remote: Document | None) -> MergeResult:
    base, local, remote = base or {}, local or {}, remote or {}
    document: Document = {}
    conflicts: list[Conflict] = []
    keys = list(remote) + [key for key in local if key not in remote]
    keys += [key for key in base if key not in remote and key not in local]
    for key in keys:
        value = _merge_module(module_for(key), base.get(key), local.get(key), remote.get(key))
        module_value, module_conflicts = value
        conflicts.extend(module_conflicts)
        if module_value is not _ABSENT:
            document[key] = module_value
    return MergeResult(document, conflicts)


class _Absent:
    pass


_ABSENT: Any = _Absent()


def _merge_module(module: Module, base: Any, local: Any, remote: Any) -> tuple[Any, list[Conflict]]:
    """The merged content of one module (``_ABSENT`` to leave the key out)."""
    # None stands for an absent key: JSON null is not a valid module anywhere.
    if same(local, base):
        return (remote if remote is not None else _ABSENT), []
    if same(remote, base) or same(local, remote):
        return (local if local is not None else _ABSENT), []
    if remote is not None and module_problem(module.key, remote) is not None:
        # Quarantined on the server: kept verbatim; the local change is reported, not applied.
        return remote, [Conflict(module.key, "(the whole module)", local, remote, "remote")]
    broken = [v for v in (base, local) if v is not None and module_problem(module.key, v)]
    if broken:
        return (remote if remote is not None else _ABSENT), []
    return _merge_entries(module, base, local, remote)


def _entries(module: Module, value: Any) -> dict[EntryKey, Any]:
    return {} if value is None else module.entries(value)


def _merge_entries(
    module: Module, base: Any, local: Any, remote: Any
) -> tuple[Any, list[Conflict]]:
    base_entries = _entries(module, base)
    local_entries = _entries(module, local)
    remote_entries = _entries(module, remote)
    conflicts: list[Conflict] = []
    merged: list[tuple[EntryKey, Any]] = []
    keys = list(remote_entries) + [key for key in local_entries if key not in remote_entries]
    keys += [key for key in base_entries if key not in remote_entries and key not in local_entries]
    for key in keys:
        was = base_entries.get(key)
        mine, theirs = local_entries.get(key), remote_entries.get(key)
        if same(mine, was):
            value = theirs
        elif same(theirs, was) or same(mine, theirs):
            value = mine
        else:
            winner = module.resolve(mine, theirs)
            conflicts.append(Conflict(module.key, module.describe(key), mine, theirs, winner))
            value = mine if winner == "local" else theirs
        if value is not None:
            merged.append((key, value))
    if not merged and local is None and remote is None:
        return _ABSENT, conflicts
    return module.compose(merged), conflicts


def changes(before: Document | None, after: Document | None) -> list[Change]:
    """What differs from ``before`` to ``after``, entry by entry (for reports)."""
    before, after = before or {}, after or {}
    found: list[Change] = []
    for key in list(after) + [key for key in before if key not in after]:
        module = module_for(key)
        old, new = before.get(key), after.get(key)
        if same(old, new):
            continue
        if any(v is not None and module_problem(key, v) for v in (old, new)):
            found.append(Change(key, "(the whole module)", "changed", new))
            continue
        old_entries, new_entries = _entries(module, old), _entries(module, new)
        for entry in list(new_entries) + [e for e in old_entries if e not in new_entries]:
            a, b = old_entries.get(entry), new_entries.get(entry)
            if same(a, b):
                continue
            kind = "added" if a is None else "removed" if b is None else "changed"
            found.append(Change(key, module.describe(entry), kind, b))
    return found
