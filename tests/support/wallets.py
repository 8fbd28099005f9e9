"""Wallet tests' factories."""

from __future__ import annotations

from collections.abc import Callable

from ledgersync.wallet import Wallet

#: ``wallets("laptop")`` → a new wallet instance on the test server, opened.
WalletFactory = Callable[[str], Wallet]

#: Ledger Live account ids (``js:2:<currency>:<xpub or address>:<derivation mode>``) for tests.
ETH = "js:2:ethereum:0x71C7656EC7ab88b098defB751B7401B5f6d8976F:"
BTC = (
    "js:2:bitcoin:xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189o"
    "LKnC5fSwqPfgyP3hooxujYzAu3fDVmz:native_segwit"
)
