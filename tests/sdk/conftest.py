"""Fixtures for the SDK tests: a live server per test and instances talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ledgersync.sdk.trustchain import TrustchainSDK

from .harness import Instance, LiveServer, live_server

InstanceFactory = Callable[..., Instance]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(tmp_path) as running:
        yield running


@pytest.fixture
async def instances(server: LiveServer) -> AsyncIterator[InstanceFactory]:
    """``instances("Linux abcde")`` → a new instance with fresh member credentials."""
    created: list[TrustchainSDK] = []

    def make(name: str, *, lifecycle: object = None) -> Instance:
        sdk = TrustchainSDK(server.url, name=name, lifecycle=lifecycle)  # type: ignore[arg-type]
        created.append(sdk)
        return Instance(sdk, sdk.init_member_credentials())

    yield make
    for sdk in created:
        await sdk.aclose()
