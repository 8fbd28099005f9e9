"""Ledger Live account descriptors, as the ``accounts`` module syncs them.

Ledger Live's account id is ``type:version:currencyId:xpubOrAddress:derivationMode``
(``js:2:ethereum:0x71C7…:`` for an Ethereum account, ``js:2:bitcoin:xpub6C…:native_segwit``
for a Bitcoin one; the derivation mode may be empty). A descriptor is what another instance
needs to rebuild the account by syncing it from the blockchain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidEdit


@dataclass(frozen=True, slots=True)
class AccountId:
    """The parts of a Ledger Live account id."""

    kind: str
    version: str
    currency_id: str
    xpub_or_address: str
    derivation_mode: str


def parse_account_id(account_id: str) -> AccountId | None:
    """The parts of ``account_id``, or None when it is not in Ledger Live's format."""
    parts = account_id.split(":")
    if len(parts) != 5 or not all(parts[:4]):
        return None
    return AccountId(*parts)


def account_descriptor(
    account_id: str,
    *,
    currency_id: str | None = None,
    fresh_address: str | None = None,
    seed_identifier: str | None = None,
    derivation_mode: str | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    """A descriptor for ``account_id``; fields not given come from the id where it has them.

    From the id: the currency, the derivation mode, and the xpub or address, which stands for
    the fresh address and the seed identifier (Ledger Live recomputes both when it syncs the
    account). ``index`` defaults to 0.
    """
    if not account_id or account_id != account_id.strip():
        raise InvalidEdit("an account id must be a non-empty string without surrounding spaces")
    parsed = parse_account_id(account_id)
    if parsed is not None and currency_id is not None and currency_id != parsed.currency_id:
        raise InvalidEdit(
            f"the account id names currency {parsed.currency_id!r}, not {currency_id!r}"
        )
    if parsed is None:
        missing = [
            option
            for option, value in (
                ("--currency", currency_id),
                ("--address", fresh_address),
            )
            if not value
        ]
        if missing:
            raise InvalidEdit(
                f"{account_id!r} is not a Ledger Live account id "
                "(type:version:currency:xpubOrAddress:derivationMode), so "
                f"{' and '.join(missing)} must be given"
            )
    if index is not None and (isinstance(index, bool) or index < 0):
        raise InvalidEdit("an account index is a non-negative integer")
    currency = currency_id or (parsed.currency_id if parsed else "")
    if not currency:
        raise InvalidEdit("an account needs a currency")
    fallback = parsed.xpub_or_address if parsed else ""
    return {
        "id": account_id,
        "currencyId": currency,
        "freshAddress": fresh_address if fresh_address is not None else fallback,
        "seedIdentifier": seed_identifier if seed_identifier is not None else fallback,
        "derivationMode": (
            derivation_mode
            if derivation_mode is not None
            else (parsed.derivation_mode if parsed else "")
        ),
        "index": index if index is not None else 0,
    }
