"""ledgersync: a self-hostable, wire-compatible Ledger Sync implementation."""

__version__ = "0.1.0"
