"""Fixtures for the SDK tests: a live server per test and instances talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import pytest

from ledgersync.sdk.trustchain import TrustchainSDK

from ..support.devices import DEVICE_KINDS, DeviceFactory, with_approvals
from ..support.instances import Instance, InstanceFactory
from ..support.servers import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


@pytest.fixture
async def instances(server: RunningServer) -> AsyncIterator[InstanceFactory]:
    """``instances("Linux abcde")`` → a new instance with fresh member credentials."""
    created: list[TrustchainSDK] = []

    def make(name: str, *, lifecycle: object = None) -> Instance:
        sdk = TrustchainSDK(server.url, name=name, lifecycle=lifecycle)  # type: ignore[arg-type]
        created.append(sdk)
        return Instance(sdk, sdk.init_member_credentials())

    yield make
    for sdk in created:
        await sdk.aclose()


@pytest.fixture(params=sorted(DEVICE_KINDS))
def make_device(request: pytest.FixtureRequest) -> DeviceFactory:
    """``make_device(phrase=None)`` → (device, approvals); runs the test for each device kind:
    the software device and the APDU client driving the emulated app."""
    return partial(with_approvals, DEVICE_KINDS[request.param])
