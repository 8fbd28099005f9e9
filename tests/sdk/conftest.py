"""Fixtures for the SDK tests: a live server per test and instances talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from ledgersync.device.interface import Device
from ledgersync.sdk.trustchain import TrustchainSDK

from ..server.harness import RunningServer
from .harness import DEVICE_KINDS, Approvals, Instance, running_server

InstanceFactory = Callable[..., Instance]
DeviceFactory = Callable[..., tuple[Device, Approvals]]


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
    factory: DeviceFactory = DEVICE_KINDS[request.param]
    return factory
