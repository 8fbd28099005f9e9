"""Fixtures of the device tests: devices of every kind (``vectors``: ../conftest); the
devices, approvals and randomness themselves are in :mod:`tests.support.devices`."""

import pytest

from ..support.devices import DEVICE_KINDS


@pytest.fixture(scope="session")
def speculos_phrase(vectors):
    return vectors["derived_speculos_seed_id_key"]["mnemonic"]


@pytest.fixture(params=sorted(DEVICE_KINDS))
def make_device(request):
    """Builds a device of each kind in turn: the software device and the APDU path."""
    return DEVICE_KINDS[request.param]
