"""The synced document (Cloud Sync slug ``live``) and its modules.

The document is a plain JSON object, exactly what Ledger Live stores: one top-level key per
module. Each module known here says how to validate its content and how to split it into
entries (the unit of the three-way merge) and put entries back together:

==================  ======================================  ===============================
module              content                                 entry (key → value)
==================  ======================================  ===============================
``accounts``        ``[{id, currencyId, freshAddress,       account id → descriptor
                    seedIdentifier, derivationMode,
                    index}]``
``accountNames``    ``{accountId: name}``                   account id → name
``recentAddresses`` ``{currencyId: [{address, index,        (currency, address) → entry
                    lastUsed?}]}``                          (``index`` is the position)
``settings``        ``{language?, counterValue?, …}``       field → value
``ageAttestation``  ``{proof?, publicSignals?, …}``         the whole module
``contacts``        ``{me?, contactGroups?: [{id, …}], …}``  field → value, group id → group
``ledgersync.labels`` ``[{record: <BIP-329>, updatedAt}]``  (type, ref) → record + time
==================  ======================================  ===============================

Any other top-level key is kept verbatim, as one entry. A module whose content does not
validate is *quarantined*: kept verbatim, never merged entry by entry, and local edits to it
are refused (:class:`~.errors.ModuleQuarantined`).

The labels module lives under ``ledgersync.labels``: Ledger names its modules with plain
camelCase identifiers (``accounts``, ``accountNames``…), so a dotted key carrying our project's
name cannot be taken by a future Ledger module, and Ledger Live re-emits keys it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]
EntryKey = Hashable

LABELS_KEY = "ledgersync.labels"
LABEL_TYPES = ("tx", "addr", "pubkey", "input", "output", "xpub")
ACCOUNT_FIELDS = ("id", "currencyId", "freshAddress", "seedIdentifier", "derivationMode", "index")


class InvalidModule(ValueError):
    """A module's content does not validate; ``str()`` says what is wrong."""


def canonical(value: Any) -> str:
    """A JSON text equal for equal JSON values (``True`` is not ``1`` here, unlike ``==``)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def same(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise InvalidModule(reason)


def _object(value: Any, what: str) -> dict[str, Any]:
    _require(isinstance(value, dict), f"{what} must be a JSON object")
    return value  # type: ignore[no-any-return]


def _list(value: Any, what: str) -> list[Any]:
    _require(isinstance(value, list), f"{what} must be a JSON array")
    return value  # type: ignore[no-any-return]


def _optional(item: dict[str, Any], key: str, check: Callable[[Any], bool], what: str) -> None:
    if key in item:
        _require(check(item[key]), f"{what}: {key!r} has the wrong type")


@dataclass(frozen=True)
class Module:
    """How one top-level key of the document validates, splits and recomposes."""

    key: str
    validate: Callable[[Any], None]
    entries: Callable[[Any], dict[EntryKey, Any]]
    #: The module's content from its entries, in the order given.
    compose: Callable[[list[tuple[EntryKey, Any]]], Any]
    #: The entry key as a person reads it in reports.
    describe: Callable[[EntryKey], str]
    #: Both sides changed one entry differently: the winner (``"local"`` or ``"remote"``).
    resolve: Callable[[Any, Any], str] = lambda local, remote: "remote"


# --- accounts ---------------------------------------------------------------------------------


def validate_account(item: Any, where: str = "account") -> dict[str, Any]:
    account = _object(item, where)
    for field in ACCOUNT_FIELDS[:-1]:
        _require(isinstance(account.get(field), str), f"{where}: {field!r} must be a string")
    _require(_is_number(account.get("index")), f"{where}: 'index' must be a number")
    return account


def _validate_accounts(value: Any) -> None:
    seen: set[str] = set()
    for position, item in enumerate(_list(value, "accounts")):
        account = validate_account(item, f"accounts[{position}]")
        _require(account["id"] not in seen, f"account {account['id']!r} appears twice")
        seen.add(account["id"])


ACCOUNTS = Module(
    key="accounts",
    validate=_validate_accounts,
    entries=lambda value: {item["id"]: item for item in value},
    compose=lambda entries: [value for _, value in entries],
    describe=str,
)


# --- account names ----------------------------------------------------------------------------


def _validate_account_names(value: Any) -> None:
    for account_id, name in _object(value, "accountNames").items():
        _require(isinstance(name, str), f"the name of {account_id!r} must be a string")


ACCOUNT_NAMES = Module(
    key="accountNames",
    validate=_validate_account_names,
    entries=lambda value: dict(value),
    compose=lambda entries: dict(entries),
    describe=str,
)


# --- recent addresses -------------------------------------------------------------------------


def _validate_recent_addresses(value: Any) -> None:
    for currency, items in _object(value, "recentAddresses").items():
        seen: set[str] = set()
        for position, item in enumerate(_list(items, f"recentAddresses[{currency!r}]")):
            where = f"recentAddresses[{currency!r}][{position}]"
            entry = _object(item, where)
            _require(isinstance(entry.get("address"), str), f"{where}: 'address' must be a string")
            _require(_is_number(entry.get("index")), f"{where}: 'index' must be a number")
            _optional(entry, "lastUsed", _is_number, where)
            _require(entry["address"] not in seen, f"{where}: address appears twice")
            seen.add(entry["address"])


def _recent_entries(value: Any) -> dict[EntryKey, Any]:
    entries: dict[EntryKey, Any] = {}
    for currency, items in value.items():
        for item in sorted(items, key=lambda entry: entry["index"]):
            # The position is the list's order, not part of the entry's value.
            entries[(currency, item["address"])] = {k: v for k, v in item.items() if k != "index"}
    return entries


def _pair(key: EntryKey) -> tuple[str, str]:
    assert isinstance(key, tuple) and len(key) == 2
    return str(key[0]), str(key[1])


def recent_addresses_from(entries: Iterable[tuple[EntryKey, Any]]) -> dict[str, Any]:
    """Group by currency keeping the order given, and number each list from 0 (as Ledger Live
    does when it pushes: any other numbering would make it push the list back)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for key, value in entries:
        currency, address = _pair(key)
        grouped.setdefault(currency, []).append({**value, "address": address})
    result: dict[str, Any] = {}
    for currency, items in grouped.items():
        result[currency] = [
            {"address": item["address"], "index": index}
            | {k: v for k, v in item.items() if k not in ("address", "index")}
            for index, item in enumerate(items)
        ]
    return result


def _compose_recent(entries: list[tuple[EntryKey, Any]]) -> Any:
    # After a real merge, the most recently used first (entries without a date last).
    ordered = sorted(
        entries,
        key=lambda pair: -pair[1]["lastUsed"] if _is_number(pair[1].get("lastUsed")) else 0,
    )
    return recent_addresses_from(ordered)


RECENT_ADDRESSES = Module(
    key="recentAddresses",
    validate=_validate_recent_addresses,
    entries=_recent_entries,
    compose=_compose_recent,
    describe=lambda key: f"{key[0]} {key[1]}",  # type: ignore[index]
)


# --- settings, age attestation, contacts ------------------------------------------------------


def _validate_settings(value: Any) -> None:
    settings = _object(value, "settings")
    for key in ("language", "counterValue"):
        _optional(settings, key, lambda v: isinstance(v, str), "settings")


SETTINGS = Module(
    key="settings",
    validate=_validate_settings,
    entries=lambda value: dict(value),
    compose=lambda entries: dict(entries),
    describe=str,
)


def _validate_age_attestation(value: Any) -> None:
    attestation = _object(value, "ageAttestation")
    _optional(attestation, "publicSignals", lambda v: isinstance(v, list), "ageAttestation")
    _optional(attestation, "minimumAge", _is_number, "ageAttestation")
    _optional(attestation, "proofHash", lambda v: isinstance(v, str), "ageAttestation")
    _optional(
        attestation, "verifiedAt", lambda v: _is_number(v) or isinstance(v, str), "ageAttestation"
    )


def _whole(value: Any) -> dict[EntryKey, Any]:
    return {(): value}


AGE_ATTESTATION = Module(
    key="ageAttestation",
    validate=_validate_age_attestation,
    entries=_whole,
    compose=lambda entries: entries[0][1] if entries else {},
    describe=lambda key: "(the whole module)",
)


def _validate_contacts(value: Any) -> None:
    contacts = _object(value, "contacts")
    if "me" in contacts:
        me = _object(contacts["me"], "contacts.me")
        _require(isinstance(me.get("name"), str), "contacts.me: 'name' must be a string")
        ids: set[str] = set()
        for position, item in enumerate(_list(me.get("addresses", []), "contacts.me.addresses")):
            address = _object(item, f"contacts.me.addresses[{position}]")
            _require(isinstance(address.get("id"), str), "contacts.me addresses need a string id")
            _require(address["id"] not in ids, f"contact address {address['id']!r} appears twice")
            ids.add(address["id"])
    groups: set[str] = set()
    for position, item in enumerate(_list(contacts.get("contactGroups", []), "contactGroups")):
        group = _object(item, f"contacts.contactGroups[{position}]")
        _require(isinstance(group.get("id"), str), "contact groups need a string id")
        _require(group["id"] != "contact-me", "the contact group id 'contact-me' is reserved")
        _require(group["id"] not in groups, f"contact group {group['id']!r} appears twice")
        groups.add(group["id"])


def _contacts_entries(value: Any) -> dict[EntryKey, Any]:
    entries: dict[EntryKey, Any] = {
        ("field", key): item for key, item in value.items() if key != "contactGroups"
    }
    for group in value.get("contactGroups", []):
        entries[("group", group["id"])] = group
    return entries


def _compose_contacts(entries: list[tuple[EntryKey, Any]]) -> Any:
    result: dict[str, Any] = {}
    groups = []
    for key, item in entries:
        kind, name = _pair(key)
        if kind == "group":
            groups.append(item)
        else:
            result[name] = item
    if groups:
        result["contactGroups"] = groups
    return result


CONTACTS = Module(
    key="contacts",
    validate=_validate_contacts,
    entries=_contacts_entries,
    compose=_compose_contacts,
    describe=lambda key: f"{key[0]} {key[1]}",  # type: ignore[index]
)


# --- labels (BIP-329 records) -----------------------------------------------------------------


def validate_label_record(record: Any, where: str = "label") -> dict[str, Any]:
    """A BIP-329 record of a known type (unknown fields are kept)."""
    item = _object(record, where)
    _require(item.get("type") in LABEL_TYPES, f"{where}: 'type' must be one of {LABEL_TYPES}")
    _require(isinstance(item.get("ref"), str) and item["ref"] != "", f"{where}: 'ref' is required")
    for key in ("label", "origin"):
        _optional(item, key, lambda v: isinstance(v, str), where)
    _optional(item, "spendable", lambda v: isinstance(v, bool), where)
    return item


def _validate_labels(value: Any) -> None:
    seen: set[tuple[str, str]] = set()
    for position, item in enumerate(_list(value, LABELS_KEY)):
        where = f"{LABELS_KEY}[{position}]"
        entry = _object(item, where)
        record = validate_label_record(entry.get("record"), f"{where}.record")
        _optional(entry, "updatedAt", _is_number, where)
        key = (record["type"], record["ref"])
        _require(key not in seen, f"label {key[0]} {key[1]!r} appears twice")
        seen.add(key)


def _resolve_labels(local: Any, remote: Any) -> str:
    # An edit beats a deletion (nothing typed is lost); else the later edit, ties to the remote.
    if remote is None:
        return "local"
    if local is None:
        return "remote"
    return "local" if local.get("updatedAt", 0) > remote.get("updatedAt", 0) else "remote"


LABELS = Module(
    key=LABELS_KEY,
    validate=_validate_labels,
    entries=lambda value: {(e["record"]["type"], e["record"]["ref"]): e for e in value},
    compose=lambda entries: [value for _, value in entries],
    describe=lambda key: f"{key[0]} {key[1]}",  # type: ignore[index]
    resolve=_resolve_labels,
)


MODULES: dict[str, Module] = {
    module.key: module
    for module in (
        ACCOUNTS,
        ACCOUNT_NAMES,
        RECENT_ADDRESSES,
        SETTINGS,
        AGE_ATTESTATION,
        CONTACTS,
        LABELS,
    )
}


def opaque_module(key: str) -> Module:
    """A top-level key nobody here knows: one entry, kept verbatim."""
    return Module(
        key=key,
        validate=lambda value: None,
        entries=_whole,
        compose=lambda entries: entries[0][1] if entries else None,
        describe=lambda entry: "(the whole module)",
    )


def module_for(key: str) -> Module:
    return MODULES.get(key) or opaque_module(key)


def module_problem(key: str, value: Any) -> str | None:
    """Why ``value`` is not valid content for module ``key``, or None when it is."""
    try:
        module_for(key).validate(value)
    except InvalidModule as exc:
        return str(exc)
    return None


def quarantined(document: Document | None) -> dict[str, str]:
    """The modules of ``document`` that do not validate, with the reason."""
    problems: dict[str, str] = {}
    for key, value in (document or {}).items():
        problem = module_problem(key, value)
        if problem is not None:
            problems[key] = problem
    return problems


def check_document(value: Any) -> Document:
    """A decrypted Cloud Sync payload as a document (a JSON object; modules may be broken)."""
    if not isinstance(value, dict):
        raise InvalidModule("the synced document must be a JSON object")
    return value
