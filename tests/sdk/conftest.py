"""Fixtures for the SDK tests: a live server per test and instances talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from ledgersync.sdk.trustchain import TrustchainSDK

from ..server.harness import RunningServer
from .harness import Instance, running_server

InstanceFactory = Callable[..., Instance]


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
