"""Fixtures of the whole suite; what tests share otherwise is in :mod:`tests.support`."""

from typing import Any

import pytest

from .support.vectors import load_vectors

#: ``ledgersync_server`` and ``ledgersync_postgres``, the fixtures wallet developers get too.
pytest_plugins = ["ledgersync.testing"]


@pytest.fixture(scope="session")
def vectors() -> dict[str, dict[str, Any]]:
    return load_vectors()
