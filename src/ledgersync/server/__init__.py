"""The ledgersync server: the Key Ring API and the Cloud Sync API on one origin.

Depends on :mod:`ledgersync.protocol` only. See ``docs/server.md`` for the structure.
"""

from .app import create_app
from .config import ServerConfig
from .run import run

__all__ = ["ServerConfig", "create_app", "run"]
