"""Cloud Sync interop: live-wallet's ``CloudSyncSDK`` (0.27.4) and ``trustchainLifecycle``
against a real ``ledgersync serve``, alone and beside ``ledgersync.sdk.cloudsync``.

Instances keep Ledger Live's wallet-sync state ``{data, version}``; the documents are opaque
JSON objects (the suite is about the protocol, not Ledger Live's account modules).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ledgersync.device.approval import approve_all
from ledgersync.device.software import SoftwareDevice
from ledgersync.sdk.cloudsync import CloudSyncSDK, DeletedData, NewData, PushedData, UpdateEvent
from ledgersync.sdk.credentials import MemberCredentials, Trustchain, TrustchainMember
from ledgersync.sdk.errors import TrustchainOutdated
from ledgersync.sdk.trustchain import TrustchainSDK
from ledgersync.testing import LocalServer

from .js import JsError, JsInstance

JsFor = Callable[..., JsInstance]


def document(tag: str) -> dict[str, Any]:
    account = f"js:2:ethereum:0x{tag.encode().hex():0>40}:"
    return {
        "accounts": [
            {
                "id": account,
                "currencyId": "ethereum",
                "freshAddress": f"0x{tag.encode().hex():0>40}",
                "seedIdentifier": "04" + "ab" * 32,
                "derivationMode": "",
                "index": 0,
            }
        ],
        "accountNames": {account: f"Account {tag} ✓"},
        "unknownModule": {"kept": tag},
    }


def synced(js_for: JsFor, device_key: str, *names: str) -> list[JsInstance]:
    instances = [js_for(name, device_key, cloud=True) for name in names]
    for instance in instances:
        instance.call("getOrCreateTrustchain")
    return instances


def updates(instance: JsInstance) -> list[str]:
    return [event["update"]["type"] for event in instance.events("cloudUpdate")]


def test_push_pull_and_up_to_date(js_for: JsFor, device_key: str) -> None:
    alice, bob = synced(js_for, device_key, "Alice", "Bob")
    assert bob.call("cloudPull") == {"data": None, "version": 0}  # no-data
    assert alice.call("cloudPush", data=document("a")) == {"data": document("a"), "version": 1}
    assert bob.call("cloudPull") == {"data": document("a"), "version": 1}
    assert updates(bob) == ["new-data"]
    assert bob.call("cloudPull") == {"data": document("a"), "version": 1}  # up-to-date
    assert updates(bob) == ["new-data"]
    assert bob.call("cloudPush", data=document("b"))["version"] == 2
    assert alice.call("cloudPull") == {"data": document("b"), "version": 2}


def test_conflict_then_merge(js_for: JsFor, device_key: str) -> None:
    alice, bob = synced(js_for, device_key, "Alice", "Bob")
    alice.call("cloudPush", data=document("1"))
    bob.call("cloudPull")
    alice.call("cloudPush", data=document("2"))
    # Bob pushes version 2 too: out-of-sync, nothing is written on either side.
    assert bob.call("cloudPush", data=document("3")) == {"data": document("1"), "version": 1}
    assert alice.call("cloudPull") == {"data": document("2"), "version": 2}
    # Ledger Live's loop: pull (adopt version 2), then push on top of it.
    assert bob.call("cloudPull") == {"data": document("2"), "version": 2}
    assert bob.call("cloudPush", data=document("3"))["version"] == 3
    assert alice.call("cloudPull") == {"data": document("3"), "version": 3}


def test_notifications(js_for: JsFor, device_key: str) -> None:
    alice, bob = synced(js_for, device_key, "Alice", "Bob")
    alice.call("cloudPush", data=document("1"))
    subscription = bob.call("cloudListen")
    # The current version comes first: the subscription is live from then on.
    assert bob.wait_event("notification", timeout=20)["version"] == 1
    alice.call("cloudPull")
    alice.call("cloudPush", data=document("2"))
    event = bob.wait_event("notification", timeout=20)
    assert (event["subscription"], event["version"]) == (subscription, 2)
    bob.call("cloudUnlisten", subscription=subscription)


def test_remove_member_moves_the_data_to_the_new_path_and_key(
    js_for: JsFor, device_key: str
) -> None:
    """live-wallet's lifecycle hook: the old document is deleted, the data re-encrypted with
    the new key on the new path; the remaining member restores and pulls it; the removed
    member is ejected."""
    alice, bob, carol = synced(js_for, device_key, "Alice", "Bob", "Carol")
    alice.call("cloudPush", data=document("x"))
    for instance in (bob, carol):
        instance.call("cloudPull")
    bob_id = bob.call("getState")["creds"]["pubkey"]
    new = alice.call("removeMember", id=bob_id, name="Bob")
    assert new["applicationPath"] == "m/0'/16'/1'"

    # Carol, still on the old path: no data there any more → deleted-data, TrustchainOutdated.
    with pytest.raises(JsError) as error:
        carol.call("cloudPull")
    assert error.value.name == "TrustchainOutdated"
    assert carol.call("getState")["ws"] == {"data": None, "version": 0}
    assert carol.call("restoreTrustchain") == new
    pulled = carol.call("cloudPull")
    assert pulled["data"] == document("x")
    assert pulled["version"] >= 1

    with pytest.raises(JsError) as error:
        bob.call("cloudPull")
    assert error.value.name in {"TrustchainOutdated", "TrustchainEjected"}
    with pytest.raises(JsError) as error:
        bob.call("restoreTrustchain")
    assert error.value.name == "TrustchainEjected"


def test_destroy_cloud_data(js_for: JsFor, device_key: str) -> None:
    alice, bob = synced(js_for, device_key, "Alice", "Bob")
    alice.call("cloudPush", data=document("1"))
    bob.call("cloudPull")
    assert alice.call("cloudDestroy") == {"data": None, "version": 0}
    with pytest.raises(JsError) as error:
        bob.call("cloudPull")
    assert error.value.name == "TrustchainOutdated"
    assert alice.call("cloudPull") == {"data": None, "version": 0}


class PyCloud:
    """A Python instance with our TrustchainSDK and CloudSyncSDK and its wallet-sync state."""

    def __init__(self, url: str, name: str) -> None:
        self.data: Any = None
        self.version = 0
        self.credentials = MemberCredentials.generate()
        self.trustchain: Trustchain | None = None
        self.sdk = TrustchainSDK(url, name=name)
        self.cloud = CloudSyncSDK(
            url,
            trustchain_sdk=self.sdk,
            get_current_version=lambda: self.version,
            save_new_update=self.save,
        )
        self.sdk.lifecycle = self.cloud.rotation_lifecycle(lambda: self.data)

    async def save(self, event: UpdateEvent) -> None:
        if isinstance(event, NewData):
            self.data, self.version = event.data, event.version
        elif isinstance(event, PushedData):
            self.version = event.version
        elif isinstance(event, DeletedData):
            self.data, self.version = None, 0

    @property
    def tc(self) -> Trustchain:
        assert self.trustchain is not None
        return self.trustchain

    async def push(self, data: Any) -> None:
        self.data = data
        await self.cloud.push(self.tc, self.credentials, data)

    async def pull(self) -> None:
        await self.cloud.pull(self.tc, self.credentials)

    async def aclose(self) -> None:
        await self.cloud.aclose()
        await self.sdk.aclose()


@pytest.fixture
async def py_cloud(server: LocalServer) -> AsyncIterator[Callable[[str], PyCloud]]:
    made: list[PyCloud] = []

    def make(name: str) -> PyCloud:
        made.append(PyCloud(server.url, name))
        return made[-1]

    yield make
    for instance in made:
        await instance.aclose()


async def js(instance: JsInstance, op: str, **args: Any) -> Any:
    return await asyncio.to_thread(instance.call, op, **args)


async def test_js_and_python_read_each_others_cloud_data(
    js_for: JsFor, device_key: str, phrase: str, py_cloud: Callable[[str], PyCloud]
) -> None:
    alice = js_for("JS Alice", device_key, cloud=True)
    await js(alice, "getOrCreateTrustchain")
    bob = py_cloud("Py Bob")
    device = SoftwareDevice.from_mnemonic(phrase, approver=approve_all)
    bob.trustchain = (await bob.sdk.get_or_create_trustchain(device, bob.credentials)).trustchain

    await js(alice, "cloudPush", data=document("js"))
    await bob.pull()
    assert (bob.data, bob.version) == (document("js"), 1)
    await bob.push(document("py"))
    assert bob.version == 2
    assert await js(alice, "cloudPull") == {"data": document("py"), "version": 2}


async def test_python_rotation_moves_the_data_for_a_js_member(
    js_for: JsFor, device_key: str, phrase: str, py_cloud: Callable[[str], PyCloud]
) -> None:
    alice, carol = synced(js_for, device_key, "JS Alice", "JS Carol")
    bob = py_cloud("Py Bob")
    device = SoftwareDevice.from_mnemonic(phrase, approver=approve_all)
    bob.trustchain = (await bob.sdk.get_or_create_trustchain(device, bob.credentials)).trustchain
    await js(alice, "cloudPush", data=document("before"))
    await bob.pull()
    await js(carol, "cloudPull")

    alice_id = (await js(alice, "getState"))["creds"]["pubkey"]
    bob.trustchain = await bob.sdk.remove_member(
        device, bob.tc, bob.credentials, TrustchainMember(alice_id, "JS Alice")
    )
    with pytest.raises(JsError) as error:
        await js(carol, "cloudPull")
    assert error.value.name == "TrustchainOutdated"
    assert Trustchain.from_json(await js(carol, "restoreTrustchain")) == bob.tc
    assert (await js(carol, "cloudPull"))["data"] == document("before")
    with pytest.raises(JsError) as error:
        await js(alice, "restoreTrustchain")
    assert error.value.name == "TrustchainEjected"


async def test_js_rotation_moves_the_data_for_a_python_member(
    js_for: JsFor, device_key: str, phrase: str, py_cloud: Callable[[str], PyCloud]
) -> None:
    (alice,) = synced(js_for, device_key, "JS Alice")
    device = SoftwareDevice.from_mnemonic(phrase, approver=approve_all)
    bob, dave = py_cloud("Py Bob"), py_cloud("Py Dave")
    for instance in (bob, dave):
        result = await instance.sdk.get_or_create_trustchain(device, instance.credentials)
        instance.trustchain = result.trustchain
    await dave.push(document("dave"))
    await js(alice, "cloudPull")
    await bob.pull()

    new = Trustchain.from_json(await js(alice, "removeMember", id=bob.credentials.pubkey))
    with pytest.raises(TrustchainOutdated):
        await dave.pull()
    dave.trustchain = await dave.sdk.restore_trustchain(dave.tc, dave.credentials)
    assert dave.tc == new
    await dave.pull()
    assert dave.data == document("dave")
