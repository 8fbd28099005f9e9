"""Fixtures of the interoperability suite: Ledger's JS packages and JS instances.

Without Node every test here fails with :data:`~tests.interop.js.NODE_HELP` (never a skip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ledgersync.device.identity import DeviceIdentity, generate_mnemonic
from ledgersync.testing import LocalServer

from ..support.vectors import load_vectors
from .js import JsInstance, ensure_node_packages

_install_error: list[str] = []
_installed: list[bool] = []


@pytest.fixture(scope="session")
def node_packages() -> None:
    if not _installed and not _install_error:
        try:
            ensure_node_packages()
            _installed.append(True)
        except Exception as exc:
            _install_error.append(str(exc))
    if _install_error:
        pytest.fail(_install_error[0], pytrace=False)


@pytest.fixture(scope="session")
def js_offline(node_packages: None) -> Iterator[JsInstance]:
    """One JS process for the stateless protocol operations."""
    with JsInstance("offline") as instance:
        yield instance


@pytest.fixture
def make_js(node_packages: None) -> Iterator[Callable[[str], JsInstance]]:
    """Start JS instances; all are stopped at teardown."""
    started: list[JsInstance] = []

    def make(label: str = "js") -> JsInstance:
        instance = JsInstance(label)
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.close()


@pytest.fixture(scope="session")
def attestation_keys() -> dict[str, Any]:
    """The Ledger Sync app's public TEST attestation key pair."""
    return load_vectors()["device_attestation_keys"]


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """A real ``ledgersync serve`` shared by the tests (each test makes its own trustchain)."""
    running = LocalServer().start()
    yield running
    running.close()


@pytest.fixture
def phrase() -> str:
    """A fresh seed (BIP39 phrase) for this test's device."""
    return generate_mnemonic()


@pytest.fixture
def device_key(phrase: str) -> str:
    """The JS software device for ``phrase``: its seed-id private key (m/99'/99'), hex."""
    return DeviceIdentity.from_mnemonic(phrase).seed_id.private_key.hex()


@pytest.fixture
def js_for(
    make_js: Callable[[str], JsInstance], server: LocalServer, attestation_keys: dict[str, Any]
) -> Callable[..., JsInstance]:
    """``js_for(name, device_key)``: a configured JS instance with fresh member credentials.

    ``cloud=True``: with Cloud Sync (any JSON document); ``wallet=True`` or wallet options
    (``{"accountNamesUpdate": "replace"}``): a Ledger Live-like wallet (harness/walletsync.cjs),
    whose Cloud Sync document is checked against Ledger's wallet-sync schema.
    """

    def make(
        name: str,
        device: str,
        *,
        url: str | None = None,
        cloud: bool = False,
        wallet: bool | dict[str, Any] = False,
    ) -> JsInstance:
        instance = make_js(name)
        base = url or server.url
        options: dict[str, Any] = {"wallet": wallet} if wallet else {}
        instance.call(
            "configure",
            trustchainApiBaseUrl=base,
            cloudSyncApiBaseUrl=base if cloud or wallet else None,
            name=name,
            devicePrivateKey=device,
            attestationPrivateKey=attestation_keys["test_private_key"],
            **options,
        )
        instance.call("initMemberCredentials")
        return instance

    return make
