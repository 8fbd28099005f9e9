"""Local edits of a document: pure functions, each returning a new document.

Every edit checks first that the module it touches is not quarantined (its synced content
does not validate): such a module is refused (:class:`~.errors.ModuleQuarantined`) so that
its content stays exactly as the server has it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .document import (
    ACCOUNT_NAMES,
    ACCOUNTS,
    LABEL_TYPES,
    LABELS_KEY,
    RECENT_ADDRESSES,
    Document,
    InvalidModule,
    module_problem,
    recent_addresses_from,
    same,
    validate_label_record,
)
from .errors import InvalidEdit, ModuleQuarantined


def _editable(document: Document, key: str) -> Any:
    value = document.get(key)
    if value is not None:
        problem = module_problem(key, value)
        if problem is not None:
            raise ModuleQuarantined(key, problem)
    return copy.deepcopy(value)


def _with(document: Document, **modules: Any) -> Document:
    result = dict(document)
    for key, value in modules.items():
        real_key = {"labels": LABELS_KEY}.get(key, key)
        if value is None:
            result.pop(real_key, None)
        else:
            result[real_key] = value
    return result


def find_account(document: Document, account_id: str) -> dict[str, Any] | None:
    accounts = document.get(ACCOUNTS.key)
    if not isinstance(accounts, list):
        return None
    for account in accounts:
        if isinstance(account, dict) and account.get("id") == account_id:
            return account
    return None


def add_account(document: Document, descriptor: dict[str, Any], name: str | None) -> Document:
    accounts = _editable(document, ACCOUNTS.key) or []
    try:
        ACCOUNTS.validate([descriptor])
    except InvalidModule as exc:
        raise InvalidEdit(str(exc)) from exc
    if any(account["id"] == descriptor["id"] for account in accounts):
        raise InvalidEdit(f"account {descriptor['id']!r} already exists")
    result = _with(document, accounts=[*accounts, descriptor])
    return rename_account(result, descriptor["id"], name) if name is not None else result


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidEdit("an account name must not be empty")
    if len(name) > 1000:
        raise InvalidEdit("an account name is at most 1000 characters")
    return name


def rename_account(document: Document, account_id: str, name: str) -> Document:
    _check_name(name)
    names = _editable(document, ACCOUNT_NAMES.key) or {}
    if find_account(document, account_id) is None:
        raise InvalidEdit(f"no account {account_id!r} (see the accounts list)")
    names[account_id] = name
    return _with(document, accountNames=names)


def remove_account(document: Document, account_id: str) -> Document:
    """Remove the account. Its custom name stays in ``accountNames``, as Ledger Live does:
    Ledger Live never deletes a name, and merges the names it receives into its own, so a
    peer running it would push a deleted name straight back."""
    accounts = _editable(document, ACCOUNTS.key) or []
    kept = [account for account in accounts if account["id"] != account_id]
    if len(kept) == len(accounts):
        raise InvalidEdit(f"no account {account_id!r} (see the accounts list)")
    return _with(document, accounts=kept)


def add_recent_address(
    document: Document, currency_id: str, address: str, last_used: int
) -> Document:
    """``address`` becomes the most recent of its currency (moved to the front if present)."""
    if not currency_id or not address:
        raise InvalidEdit("a recent address needs a currency and an address")
    recent = _editable(document, RECENT_ADDRESSES.key) or {}
    entries = RECENT_ADDRESSES.entries(recent)
    entries.pop((currency_id, address), None)
    front = [((currency_id, address), {"lastUsed": last_used})]
    return _with(document, recentAddresses=recent_addresses_from([*front, *entries.items()]))


# --- labels -----------------------------------------------------------------------------------


def label_key(label_type: str, ref: str) -> tuple[str, str]:
    if label_type not in LABEL_TYPES:
        raise InvalidEdit(f"unknown label type {label_type!r}: use one of {', '.join(LABEL_TYPES)}")
    if not ref:
        raise InvalidEdit("a label needs a reference (txid, address, key, txid:index or xpub)")
    return label_type, ref


def label_records(document: Document) -> list[dict[str, Any]]:
    """The BIP-329 records of ``document`` (none when the module is quarantined)."""
    value = document.get(LABELS_KEY)
    if value is None or module_problem(LABELS_KEY, value) is not None:
        return []
    return [entry["record"] for entry in value]


def set_label(
    document: Document,
    label_type: str,
    ref: str,
    label: str,
    *,
    now_ms: int,
    origin: str | None = None,
    spendable: bool | None = None,
) -> Document:
    """Set the label of ``(type, ref)``, keeping the record's other fields."""
    label_key(label_type, ref)
    if spendable is not None and label_type != "output":
        raise InvalidEdit("'spendable' applies to output labels only (BIP-329)")
    existing = {(record["type"], record["ref"]): record for record in label_records(document)}.get(
        (label_type, ref), {"type": label_type, "ref": ref}
    )
    record = dict(existing) | {"label": label}
    if origin is not None:
        record["origin"] = origin
    if spendable is not None:
        record["spendable"] = spendable
    return import_labels(document, [record], now_ms=now_ms)


def import_labels(
    document: Document, records: Iterable[dict[str, Any]], *, now_ms: int
) -> Document:
    """Set every record (replacing the one with the same type and ref) as a local edit."""
    entries = _editable(document, LABELS_KEY) or []
    by_key = {(entry["record"]["type"], entry["record"]["ref"]): entry for entry in entries}
    for record in records:
        try:
            validate_label_record(record)
        except InvalidModule as exc:
            raise InvalidEdit(str(exc)) from exc
        key = (record["type"], record["ref"])
        current = by_key.get(key)
        if current is not None and same(current["record"], record):
            continue  # unchanged: keep its time, so that it does not win a conflict it lost
        by_key[key] = {"record": copy.deepcopy(record), "updatedAt": now_ms}
    return _with(document, labels=list(by_key.values()) or None)


def remove_label(document: Document, label_type: str, ref: str) -> Document:
    key = label_key(label_type, ref)
    entries = _editable(document, LABELS_KEY) or []
    kept = [e for e in entries if (e["record"]["type"], e["record"]["ref"]) != key]
    if len(kept) == len(entries):
        raise InvalidEdit(f"no {label_type} label for {ref!r}")
    return _with(document, labels=kept)
