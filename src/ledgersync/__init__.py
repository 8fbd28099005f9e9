"""ledgersync: a self-hostable, wire-compatible Ledger Sync implementation.

Import from the layers' packages, each of which lists its public names in ``__all__``:
:mod:`ledgersync.protocol`, :mod:`ledgersync.device`, :mod:`ledgersync.sdk`,
:mod:`ledgersync.wallet` and :mod:`ledgersync.server` (docs/architecture.md).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
