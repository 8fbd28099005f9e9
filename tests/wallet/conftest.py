"""Fixtures for the wallet tests: one real ``ledgersync serve`` per module, fresh homes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ledgersync.device.approval import approve_all
from ledgersync.device.identity import generate_mnemonic
from ledgersync.device.software import SoftwareDevice
from ledgersync.testing import LocalServer
from ledgersync.wallet import InstanceStore, Wallet

from ..support.wallets import WalletFactory


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> InstanceStore:
    return InstanceStore(tmp_path / "home")


@pytest.fixture
def device() -> SoftwareDevice:
    return SoftwareDevice.from_mnemonic(generate_mnemonic(), approver=approve_all)


@pytest.fixture
async def wallets(store: InstanceStore, server: LocalServer) -> AsyncIterator[WalletFactory]:
    """``wallets("laptop")`` → a new instance on the test server, opened."""
    opened: list[Wallet] = []

    def make(name: str) -> Wallet:
        if name not in store.names():
            store.create(name, server.url)
        wallet = Wallet(store, name)
        opened.append(wallet)
        return wallet

    yield make
    for wallet in opened:
        await wallet.aclose()
