"""A JS instance (Ledger's SDK 0.15.2) and a Python instance (``ledgersync.sdk``) in one
trustchain on a real ``ledgersync serve``, with one seed used as Ledger's SoftwareDevice on the
JS side and as our software device on the Python side.

JS calls block on their Node process; they run in threads so that Python SDK coroutines (QR
pairing) proceed at the same time on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ledgersync.device.approval import approve_all
from ledgersync.device.software import SoftwareDevice
from ledgersync.sdk.credentials import MemberCredentials, Trustchain, TrustchainMember
from ledgersync.sdk.errors import TrustchainEjected
from ledgersync.sdk.qr import DigitsRequest, pair_as_candidate, pair_as_host
from ledgersync.sdk.trustchain import TrustchainSDK
from ledgersync.testing import LocalServer

from .js import JsError, JsInstance, shown_qr_url

JsFor = Callable[..., JsInstance]


class PyInstance:
    """One Python instance: our SDK, its member credentials and its trustchain."""

    def __init__(self, sdk: TrustchainSDK) -> None:
        self.sdk = sdk
        self.credentials = MemberCredentials.generate()
        self.trustchain: Trustchain | None = None

    @property
    def tc(self) -> Trustchain:
        assert self.trustchain is not None
        return self.trustchain

    def as_member(self) -> dict[str, Any]:
        return {"id": self.credentials.pubkey, "name": self.sdk.name, "permissions": 0xFFFFFFFF}

    async def join(self, device: SoftwareDevice) -> str:
        result = await self.sdk.get_or_create_trustchain(device, self.credentials)
        self.trustchain = result.trustchain
        return str(result.type.value)

    async def members(self) -> list[dict[str, Any]]:
        found = await self.sdk.get_members(self.tc, self.credentials)
        return [member.to_json() for member in found]


@pytest.fixture
async def python_for(server: LocalServer) -> AsyncIterator[Callable[[str], PyInstance]]:
    made: list[PyInstance] = []

    def make(name: str) -> PyInstance:
        instance = PyInstance(TrustchainSDK(server.url, name=name))
        made.append(instance)
        return instance

    yield make
    for instance in made:
        await instance.sdk.aclose()


@pytest.fixture
def py_device(phrase: str) -> SoftwareDevice:
    """Our software device restored from the same seed as the JS device."""
    return SoftwareDevice.from_mnemonic(phrase, approver=approve_all)


async def js(instance: JsInstance, op: str, **args: Any) -> Any:
    return await asyncio.to_thread(instance.call, op, **args)


def js_member(instance: JsInstance, name: str) -> dict[str, Any]:
    creds = instance.call("getState")["creds"]
    return {"id": creds["pubkey"], "name": name, "permissions": 0xFFFFFFFF}


def js_trustchain(instance: JsInstance) -> Trustchain:
    return Trustchain.from_json(instance.call("getState")["trustchain"])


async def test_js_and_python_share_a_trustchain_and_each_others_data(
    js_for: JsFor, device_key: str, py_device: SoftwareDevice, python_for: Any
) -> None:
    alice = js_for("JS Alice", device_key)
    bob = python_for("Py Bob")
    assert (await js(alice, "getOrCreateTrustchain"))["type"] == "created"
    assert await bob.join(py_device) == "updated"
    assert bob.tc == js_trustchain(alice)  # same id, path and walletSyncEncryptionKey
    expected = [js_member(alice, "JS Alice"), bob.as_member()]
    assert await js(alice, "getMembers") == expected
    assert await bob.members() == expected

    from_js = bytes.fromhex(await js(alice, "encryptUserData", data=b"from JS".hex()))
    assert bob.sdk.decrypt_user_data(bob.tc, from_js) == b"from JS"
    from_python = bob.sdk.encrypt_user_data(bob.tc, b"from Python")
    assert await js(alice, "decryptUserData", data=from_python.hex()) == b"from Python".hex()


async def test_python_creates_and_js_joins(
    js_for: JsFor, device_key: str, py_device: SoftwareDevice, python_for: Any
) -> None:
    bob = python_for("Py Bob")
    assert await bob.join(py_device) == "created"
    alice = js_for("JS Alice", device_key)
    joined = await js(alice, "getOrCreateTrustchain")
    assert joined["type"] == "updated"
    assert Trustchain.from_json(joined["trustchain"]) == bob.tc
    assert await bob.members() == [bob.as_member(), js_member(alice, "JS Alice")]


async def test_python_pairs_into_a_js_host_by_qr(
    js_for: JsFor, device_key: str, python_for: Any
) -> None:
    host = js_for("JS Host", device_key)
    await js(host, "getOrCreateTrustchain")
    candidate = python_for("Py Candidate")

    hosting = host.start("qrHost")
    url = await asyncio.to_thread(shown_qr_url, host)

    async def read_digits(request: DigitsRequest) -> str:
        assert request.digits == 3
        return str((await asyncio.to_thread(host.wait_event, "qrDigits"))["digits"])

    candidate.trustchain = await asyncio.wait_for(
        pair_as_candidate(
            candidate.sdk,
            candidate.credentials,
            None,
            scanned_url=url,
            on_request_qr_code_input=read_digits,
        ),
        60,
    )
    assert await asyncio.to_thread(hosting.result, 30) is None
    assert candidate.tc == js_trustchain(host)
    expected = [js_member(host, "JS Host"), candidate.as_member()]
    assert await candidate.members() == expected
    assert await js(host, "getMembers") == expected


async def test_js_pairs_into_a_python_host_by_qr(
    js_for: JsFor, py_device: SoftwareDevice, python_for: Any
) -> None:
    host = python_for("Py Host")
    await host.join(py_device)
    candidate = js_for("JS Candidate", "11" * 32)  # never uses a device
    shown: asyncio.Queue[str] = asyncio.Queue()

    async def scan(url: str) -> None:
        scanning = candidate.start("qrCandidate", url=url)
        await asyncio.to_thread(candidate.wait_event, "qrDigitsRequested")
        await js(candidate, "qrEnterDigits", digits=await shown.get())
        await asyncio.to_thread(scanning.result, 30)

    scans: list[asyncio.Task[None]] = []
    result = await asyncio.wait_for(
        pair_as_host(
            host.sdk,
            host.credentials,
            host.tc,
            on_display_qr_code=lambda url: scans.append(asyncio.create_task(scan(url))),
            on_display_digits=shown.put_nowait,
        ),
        60,
    )
    await scans[0]
    assert result == host.tc
    assert js_trustchain(candidate) == host.tc
    expected = [host.as_member(), js_member(candidate, "JS Candidate")]
    assert await js(candidate, "getMembers") == expected
    assert await host.members() == expected


async def test_python_removes_the_js_member_which_is_ejected(
    js_for: JsFor, device_key: str, py_device: SoftwareDevice, python_for: Any
) -> None:
    alice, carol = js_for("JS Alice", device_key), js_for("JS Carol", device_key)
    await js(alice, "getOrCreateTrustchain")
    await js(carol, "getOrCreateTrustchain")
    bob = python_for("Py Bob")
    await bob.join(py_device)
    old = bob.tc

    bob.trustchain = await bob.sdk.remove_member(
        py_device, bob.tc, bob.credentials, TrustchainMember(**js_member(alice, "JS Alice"))
    )
    assert bob.tc.application_path == "m/0'/16'/1'"
    assert bob.tc.wallet_sync_encryption_key != old.wallet_sync_encryption_key

    for op in ("restoreTrustchain", "getMembers"):
        with pytest.raises(JsError) as error:
            await js(alice, op)
        assert error.value.name == "TrustchainEjected"
    # The JS member that stays picks up the new key and path.
    assert Trustchain.from_json(await js(carol, "restoreTrustchain")) == bob.tc
    expected = [bob.as_member(), js_member(carol, "JS Carol")]
    assert await js(carol, "getMembers") == expected
    assert await bob.members() == expected


async def test_js_removes_the_python_member_which_is_ejected(
    js_for: JsFor, device_key: str, py_device: SoftwareDevice, python_for: Any
) -> None:
    alice = js_for("JS Alice", device_key)
    await js(alice, "getOrCreateTrustchain")
    bob, dave = python_for("Py Bob"), python_for("Py Dave")
    await bob.join(py_device)
    await dave.join(py_device)

    new = Trustchain.from_json(await js(alice, "removeMember", id=bob.credentials.pubkey))
    assert new.application_path == "m/0'/16'/1'"

    with pytest.raises(TrustchainEjected):
        await bob.sdk.restore_trustchain(bob.tc, bob.credentials)
    with pytest.raises(TrustchainEjected):
        await bob.members()
    assert await dave.sdk.restore_trustchain(dave.tc, dave.credentials) == new
    dave.trustchain = new
    assert await dave.members() == [js_member(alice, "JS Alice"), dave.as_member()]
