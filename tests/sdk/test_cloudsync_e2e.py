"""CloudSyncSDK against the real server (Key Ring and Cloud Sync on one origin), over real HTTP
and websockets, with a short ping interval so that the notification socket's pings happen."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledgersync.protocol.userdata import encrypt_user_data
from ledgersync.sdk.auth import AuthPolicy
from ledgersync.sdk.cloudsync import (
    CloudSyncSDK,
    DeletedData,
    NewData,
    PushedData,
    UpdateEvent,
)
from ledgersync.sdk.cloudsync_api import Status
from ledgersync.sdk.credentials import Trustchain, TrustchainMember
from ledgersync.sdk.errors import (
    CloudSyncLocked,
    CloudSyncOutOfSync,
    CloudSyncPayloadError,
    NetworkError,
    TrustchainEjected,
    TrustchainOutdated,
)
from ledgersync.sdk.http import HTTPOptions
from ledgersync.sdk.notifications import Notice

from ..support.devices import software_device
from ..support.instances import Instance, InstanceFactory, move_past
from ..support.network import CuttableProxy
from ..support.servers import RunningServer, running_server
from ..support.tokens import token_claims

ACCOUNTS = {
    "accounts": [
        {
            "id": "js:2:ethereum:0x66c4371aE8FFeD2ec1c2EBbbcCfb7E494181E1E3:",
            "currencyId": "ethereum",
            "freshAddress": "0x66c4371aE8FFeD2ec1c2EBbbcCfb7E494181E1E3",
            "seedIdentifier": "04f4ef7c",
            "derivationMode": "",
            "index": 0,
        }
    ],
    "accountNames": {"js:2:ethereum:0x66c4371aE8FFeD2ec1c2EBbbcCfb7E494181E1E3:": "Main"},
    "futureModule": {"kept": True},  # unknown fields round-trip
}


class LocalState:
    """What an app persists for wallet sync: the last document seen and its version."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.data: Any = None
        self.events: list[UpdateEvent] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    def current_version(self) -> int | None:
        return self.version

    async def save(self, event: UpdateEvent) -> None:
        self.events.append(event)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(event, NewData | PushedData):
            self.data, self.version = event.data, event.version
        else:
            self.data, self.version = None, 0


#: Seconds between the server's pings; a client has as long to answer each one, so this is
#: long enough for a busy machine (a pong later than that would close the socket).
PING_INTERVAL = 1.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path, cloudsync_ping_interval=PING_INTERVAL) as running:
        yield running


@pytest.fixture
async def synced(
    instances: InstanceFactory, server: RunningServer
) -> AsyncIterator[list[Instance]]:
    """Three instances of one trustchain, each with a CloudSyncSDK and a local state."""
    device, _ = software_device()
    members = [instances(name) for name in ("Linux", "Mac", "Phone")]
    for member in members:
        result = await member.sdk.get_or_create_trustchain(device, member.credentials)
        member.trustchain = result.trustchain
        state = LocalState()
        member.extra["state"] = state
        member.extra["device"] = device
        member.extra["cloud"] = CloudSyncSDK(
            server.url,
            trustchain_sdk=member.sdk,
            get_current_version=state.current_version,
            save_new_update=state.save,
            http=HTTPOptions(client_version=f"test/{member.name}"),
        )
    yield members
    for member in members:
        await member.extra["cloud"].aclose()


def parts(member: Instance) -> tuple[CloudSyncSDK, LocalState]:
    return member.extra["cloud"], member.extra["state"]


async def test_push_then_pull(synced: list[Instance]) -> None:
    linux, mac, _ = synced
    linux_cloud, linux_state = parts(linux)
    mac_cloud, mac_state = parts(mac)
    assert (await mac_cloud.pull(mac.tc, mac.credentials)).status is Status.NO_DATA
    pushed = await linux_cloud.push(linux.tc, linux.credentials, ACCOUNTS)
    assert (pushed.status, pushed.version) == (Status.UPDATED, 1)
    assert linux_state.events == [PushedData(1, ACCOUNTS)]
    jwt = await mac.sdk.get_jwt(mac.tc, mac.credentials)
    raw = await mac_cloud.api.fetch(jwt, mac.tc.root_id, mac.tc.application_path, None)
    assert raw.document is not None
    assert b"Main" not in base64.b64decode(raw.document.payload)  # the server sees ciphertext

    pulled = await mac_cloud.pull(mac.tc, mac.credentials)
    assert (pulled.status, pulled.version, pulled.data) == (Status.OUT_OF_SYNC, 1, ACCOUNTS)
    assert pulled.info == "test/Linux" and pulled.date
    assert mac_state.events == [NewData(ACCOUNTS, 1)]
    assert (await mac_cloud.pull(mac.tc, mac.credentials)).status is Status.UP_TO_DATE


async def test_lost_race_without_merge_adopts_the_server_version(synced: list[Instance]) -> None:
    linux, mac, _ = synced
    await parts(linux)[0].push(linux.tc, linux.credentials, {"accountNames": {"a": "linux"}})
    mac_cloud, mac_state = parts(mac)
    result = await mac_cloud.push(mac.tc, mac.credentials, {"accountNames": {"a": "mac"}})
    assert (result.status, result.version) == (Status.OUT_OF_SYNC, 1)
    assert result.remote == {"accountNames": {"a": "linux"}}
    assert (mac_state.version, mac_state.data) == (1, {"accountNames": {"a": "linux"}})


async def test_lost_race_with_merge_retries(synced: list[Instance]) -> None:
    linux, mac, phone = synced
    await parts(linux)[0].push(linux.tc, linux.credentials, {"accountNames": {"a": "linux"}})
    mac_cloud, mac_state = parts(mac)
    seen: list[tuple[Any, Any]] = []

    def merge(local: Any, remote: Any) -> Any:
        seen.append((local, remote))
        return {"accountNames": {**remote["accountNames"], **local["accountNames"]}}

    mine = {"accountNames": {"b": "mac"}}
    result = await mac_cloud.push(mac.tc, mac.credentials, mine, merge=merge)
    assert (result.status, result.version) == (Status.UPDATED, 2)
    assert seen == [(mine, {"accountNames": {"a": "linux"}})]
    merged = {"accountNames": {"a": "linux", "b": "mac"}}
    # The caller learns the merged document, not only its version: it is what is stored.
    assert result.data == merged
    assert mac_state.events[-1] == PushedData(2, merged)
    assert (mac_state.version, mac_state.data) == (2, merged)
    assert (await mac_cloud.pull(mac.tc, mac.credentials)).status is Status.UP_TO_DATE
    pulled = await parts(phone)[0].pull(phone.tc, phone.credentials)
    assert pulled.data == merged


async def test_merge_that_keeps_losing(synced: list[Instance]) -> None:
    linux, mac, _ = synced
    linux_cloud, linux_state = parts(linux)
    await linux_cloud.push(linux.tc, linux.credentials, {"n": 0})

    async def merge_while_linux_pushes(local: Any, remote: Any) -> Any:
        # Another instance wins again while we merge.
        await linux_cloud.push(linux.tc, linux.credentials, {"n": remote["n"] + 1})
        return local

    with pytest.raises(CloudSyncOutOfSync) as info:
        await parts(mac)[0].push(
            mac.tc, mac.credentials, {"n": 100}, merge=merge_while_linux_pushes, max_attempts=2
        )
    assert info.value.version == 2
    assert linux_state.version == 3


async def test_one_operation_at_a_time(synced: list[Instance]) -> None:
    linux, mac, _ = synced
    await parts(linux)[0].push(linux.tc, linux.credentials, ACCOUNTS)
    mac_cloud, mac_state = parts(mac)
    mac_state.gate = asyncio.Event()
    pulling = asyncio.create_task(mac_cloud.pull(mac.tc, mac.credentials))
    await mac_state.entered.wait()  # the pull is now inside save_new_update
    with pytest.raises(CloudSyncLocked, match="pull"):
        await mac_cloud.push(mac.tc, mac.credentials, ACCOUNTS)
    mac_state.gate.set()
    assert (await pulling).version == 1
    assert (await mac_cloud.push(mac.tc, mac.credentials, ACCOUNTS)).status is Status.UPDATED


async def test_destroy_then_others_are_told(synced: list[Instance]) -> None:
    linux, mac, _ = synced
    linux_cloud, linux_state = parts(linux)
    await linux_cloud.push(linux.tc, linux.credentials, ACCOUNTS)
    mac_cloud, mac_state = parts(mac)
    await mac_cloud.pull(mac.tc, mac.credentials)
    await linux_cloud.destroy(linux.tc, linux.credentials)
    assert linux_state.events[-1] == DeletedData() and linux_state.version == 0
    with pytest.raises(TrustchainOutdated):
        await mac_cloud.pull(mac.tc, mac.credentials)
    assert mac_state.events[-1] == DeletedData() and mac_state.version == 0
    assert (await mac_cloud.pull(mac.tc, mac.credentials)).status is Status.NO_DATA


async def test_payload_formats(synced: list[Instance]) -> None:
    """Newer Ledger Live writes gzip, older zlib: both read. Garbage is a typed error."""
    linux, mac, _ = synced
    mac_cloud, _ = parts(mac)
    key = linux.tc.wallet_sync_encryption_key
    text = json.dumps(ACCOUNTS).encode()
    gzipped = base64.b64encode(encrypt_user_data(key, gzip.compress(text))).decode()
    jwt = await linux.sdk.get_jwt(linux.tc, linux.credentials)
    api = parts(linux)[0].api
    assert (
        await api.upload(jwt, linux.tc.root_id, linux.tc.application_path, 1, gzipped)
    ).status is Status.UPDATED
    assert (await mac_cloud.pull(mac.tc, mac.credentials)).data == ACCOUNTS
    await api.upload(jwt, linux.tc.root_id, linux.tc.application_path, 2, "bm90IGVuY3J5cHRlZA==")
    with pytest.raises(CloudSyncPayloadError):
        await mac_cloud.pull(mac.tc, mac.credentials)


async def test_expired_token_is_refreshed(synced: list[Instance], server: RunningServer) -> None:
    linux = synced[0]
    linux_cloud, _ = parts(linux)
    await linux_cloud.push(linux.tc, linux.credentials, {"n": 1})
    claims = token_claims((await linux.sdk.get_jwt(linux.tc, linux.credentials)).access_token)
    move_past(server, claims["exp"])
    assert (await linux_cloud.push(linux.tc, linux.credentials, {"n": 2})).version == 2
    after = token_claims((await linux.sdk.get_jwt(linux.tc, linux.credentials)).access_token)
    assert (
        after["jti"] != claims["jti"] and after["refreshExpiration"] == claims["refreshExpiration"]
    )


async def test_rotation_moves_the_data_to_the_new_key(synced: list[Instance]) -> None:
    linux, mac, phone = synced
    linux_cloud, linux_state = parts(linux)
    await linux_cloud.push(linux.tc, linux.credentials, ACCOUNTS)
    for member in (mac, phone):
        await parts(member)[0].pull(member.tc, member.credentials)
    linux.sdk.lifecycle = linux_cloud.rotation_lifecycle(lambda: linux_state.data or ACCOUNTS)
    removed = TrustchainMember(mac.credentials.pubkey, mac.name)
    new = await linux.sdk.remove_member(linux.extra["device"], linux.tc, linux.credentials, removed)
    assert linux_state.events[-1] == PushedData(1, ACCOUNTS)
    linux.trustchain = new

    # The phone sees the old data gone, restores the trustchain and pulls the re-encrypted copy.
    phone_cloud, phone_state = parts(phone)
    with pytest.raises(TrustchainOutdated):
        await phone_cloud.pull(phone.tc, phone.credentials)
    phone.trustchain = await phone.sdk.restore_trustchain(phone.tc, phone.credentials)
    assert phone.tc == new
    pulled = await phone_cloud.pull(phone.tc, phone.credentials)
    assert (pulled.version, pulled.data) == (1, ACCOUNTS)
    assert phone_state.version == 1

    # The removed one is told the data is gone, then cannot restore.
    mac_cloud, _ = parts(mac)
    with pytest.raises(TrustchainOutdated):
        await mac_cloud.pull(mac.tc, mac.credentials)
    with pytest.raises(TrustchainEjected):
        await mac.sdk.restore_trustchain(mac.tc, mac.credentials)
    # A stale trustchain is refused before any request once the token knows the new path.
    await phone.sdk.get_jwt(phone.tc, phone.credentials, AuthPolicy.REFRESH)
    stale = Trustchain(new.root_id, new.wallet_sync_encryption_key, "m/0'/16'/0'")
    with pytest.raises(TrustchainOutdated):
        await phone_cloud.pull(stale, phone.credentials)
    # The same, decided by the server's answer ("path does not match") rather than locally.
    with pytest.raises(TrustchainOutdated):
        await phone.sdk.with_auth(
            phone.tc,
            phone.credentials,
            lambda jwt: phone_cloud.api.fetch(jwt, new.root_id, "m/0'/16'/0'", None),
            ignore_permissions_checks=True,
        )


async def next_version(iterator: Any) -> int:
    return int(await asyncio.wait_for(anext(iterator), timeout=30))


async def next_notice(notices: AsyncIterator[Notice]) -> Notice:
    return await asyncio.wait_for(anext(notices), timeout=30)


async def wait_for(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    """Poll a condition driven by wall-clock timers (the server's pings) under a deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_notifications(synced: list[Instance], server: RunningServer) -> None:
    linux, mac, _ = synced
    linux_cloud, _ = parts(linux)
    port = int(server.url.rsplit(":", 1)[1])
    async with CuttableProxy(port) as proxy:
        watcher = CloudSyncSDK(
            proxy.url,
            trustchain_sdk=mac.sdk,
            get_current_version=lambda: None,
            save_new_update=parts(mac)[1].save,
        )
        notes = watcher.notifications(mac.tc, mac.credentials, max_reconnects=2, backoff=0.01)
        # Written before the socket subscribes, so that version 1 comes exactly once: as the
        # current version sent on subscription. (A write racing the subscription may come
        # twice, pushed and read: at least once is the contract. A stale duplicate queued here
        # would be taken below for the version that follows the token renewal.)
        await linux_cloud.push(linux.tc, linux.credentials, {"n": 1})
        async with notes:
            notices = notes.notices()  # the versions, each saying whether it answers a token
            assert await next_notice(notices) == Notice(1, subscribed=True)
            await wait_for(lambda: notes.pings >= 2, "two pings answered", 10 * PING_INTERVAL)

            # The token expires: "JWT expired", a fresh token, the current version again.
            claims = token_claims((await mac.sdk.get_jwt(mac.tc, mac.credentials)).access_token)
            move_past(server, claims["exp"])
            assert await next_notice(notices) == Notice(1, subscribed=True)
            assert (notes.tokens_sent, notes.connections) == (2, 1)
            await linux_cloud.push(linux.tc, linux.credentials, {"n": 2})
            assert await next_notice(notices) == Notice(2, subscribed=False)

            # The network breaks: a new connection, a fresh token, the current version.
            proxy.cut()
            assert await next_notice(notices) == Notice(2, subscribed=True)
            assert (notes.tokens_sent, notes.connections) == (3, 2)
            await linux_cloud.push(linux.tc, linux.credentials, {"n": 3})
            assert await next_notice(notices) == Notice(3, subscribed=False)
            await linux_cloud.destroy(linux.tc, linux.credentials)
            assert await next_notice(notices) == Notice(0, subscribed=False)  # deleted

            # The server stays out of reach: the subscription gives up with a typed error.
            proxy.refuse()
            proxy.cut()
            with pytest.raises(NetworkError, match="gave up"):
                await next_notice(notices)
        await watcher.aclose()


async def test_notifications_refused_for_a_removed_member(synced: list[Instance]) -> None:
    linux, mac, _ = synced
    removed = TrustchainMember(mac.credentials.pubkey, mac.name)
    await linux.sdk.remove_member(linux.extra["device"], linux.tc, linux.credentials, removed)
    async with parts(mac)[0].notifications(mac.tc, mac.credentials) as notes:
        with pytest.raises(TrustchainEjected):
            await next_version(notes)
