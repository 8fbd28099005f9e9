"""Exports of an instance's data: JSON (everything), CSV (a sheet), BIP-329 (labels).

JSON (``to_json``)::

    {"format": "ledgersync-wallet/1",
     "accounts": [{"id", "currencyId", "freshAddress", "seedIdentifier", "derivationMode",
                   "index", "name": "<custom name or null>"}],
     "labels": [<BIP-329 records>],
     "recentAddresses": {"<currencyId>": [{"address", "index", "lastUsed"?}]},
     "modules": {"<any other module>": <its content, verbatim>},
     "quarantined": {"<module>": "<why it does not validate>"}}

CSV (``to_csv``): RFC 4180 (``\\r\\n``, quotes where needed), UTF-8, a header row, then one row
per account and one per label, with the columns of :data:`CSV_COLUMNS`. ``date`` is ISO 8601
(a label's ``time``), ``value`` a label's ``value`` (satoshis in BIP-329), ``address`` an
account's fresh address or a label's address/counterparty (the ``ref`` of ``addr`` labels).
``confirmed_only`` keeps only the transaction labels that have a block ``height``.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from .document import (
    ACCOUNT_NAMES,
    ACCOUNTS,
    LABELS_KEY,
    RECENT_ADDRESSES,
    Document,
    quarantined,
)
from .edits import label_records
from .labels import write_bip329

JSON_FORMAT = "ledgersync-wallet/1"
CSV_COLUMNS = ("kind", "reference", "label", "currency", "account", "address", "date", "value")
_OWN_KEYS = (ACCOUNTS.key, ACCOUNT_NAMES.key, RECENT_ADDRESSES.key, LABELS_KEY)


def accounts_with_names(document: Document) -> list[dict[str, Any]]:
    """The accounts (when the module validates), each with its custom ``name`` or None."""
    problems = quarantined(document)
    accounts = document.get(ACCOUNTS.key) if ACCOUNTS.key not in problems else None
    names = document.get(ACCOUNT_NAMES.key) if ACCOUNT_NAMES.key not in problems else None
    return [account | {"name": (names or {}).get(account["id"])} for account in accounts or []]


def to_json(document: Document) -> dict[str, Any]:
    problems = quarantined(document)
    recent = document.get(RECENT_ADDRESSES.key)
    return {
        "format": JSON_FORMAT,
        "accounts": accounts_with_names(document),
        "labels": label_records(document),
        "recentAddresses": recent
        if recent is not None and RECENT_ADDRESSES.key not in problems
        else {},
        "modules": {key: value for key, value in document.items() if key not in _OWN_KEYS},
        "quarantined": problems,
    }


def _iso_date(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value  # milliseconds or seconds
        try:
            return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):
            return ""
    return ""


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_rows(document: Document, *, confirmed_only: bool = False) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for account in accounts_with_names(document):
        rows.append(
            {
                "kind": "account",
                "reference": account["id"],
                "label": account["name"] or "",
                "currency": account["currencyId"],
                "account": account["id"],
                "address": account["freshAddress"],
                "date": "",
                "value": "",
            }
        )
    for record in label_records(document):
        if confirmed_only and record["type"] == "tx" and record.get("height") is None:
            continue
        rows.append(
            {
                "kind": record["type"],
                "reference": record["ref"],
                "label": _text(record.get("label")),
                "currency": _text(record.get("currency")),
                "account": _text(record.get("origin")),
                "address": record["ref"]
                if record["type"] == "addr"
                else _text(record.get("address")),
                "date": _iso_date(record.get("time")),
                "value": _text(record.get("value")),
            }
        )
    return rows


def to_csv(document: Document, *, confirmed_only: bool = False) -> str:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(csv_rows(document, confirmed_only=confirmed_only))
    return out.getvalue()


def to_bip329(document: Document) -> str:
    return write_bip329(label_records(document))
