"""QR pairing through the real server's relay, in both roles, with the error paths.

The host's display callbacks feed queues the candidate reads: the candidate "scans" the URL
and "types" the digits only once the host has shown them, with no sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect

from ledgersync.protocol import qr
from ledgersync.protocol.crypto import KeyPair
from ledgersync.sdk.credentials import Trustchain
from ledgersync.sdk.errors import (
    InvalidDigitsError,
    InvalidEncryptionKeyError,
    NoTrustchainInitialized,
    QRCodeProtocolError,
    QRCodeWSClosed,
    ScannedInvalidQrCode,
    ScannedOldImportQrCode,
    TrustchainAlreadyInitialized,
)
from ledgersync.sdk.qr import (
    DigitsRequest,
    create_qr_code_candidate_instance,
    pair_as_candidate,
    pair_as_host,
)

from ..support.devices import software_device
from ..support.instances import Instance, InstanceFactory


class Screen:
    """What the host shows: the QR code URL, then the digits."""

    def __init__(self) -> None:
        self.urls: asyncio.Queue[str] = asyncio.Queue()
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.requests: list[DigitsRequest] = []

    def host(self, host: Instance) -> asyncio.Task[Trustchain]:
        """Start ``host`` pairing, showing its QR code and digits on this screen."""
        return asyncio.create_task(
            pair_as_host(
                host.sdk,
                host.credentials,
                host.trustchain,
                on_display_qr_code=self.urls.put_nowait,
                on_display_digits=self.digits.put_nowait,
            )
        )

    def typist(
        self, transform: Callable[[str], str] = str
    ) -> Callable[[DigitsRequest], Awaitable[str]]:
        async def type_digits(request: DigitsRequest) -> str:
            self.requests.append(request)
            return transform(await self.digits.get())

        return type_digits


async def with_trustchain(instance: Instance) -> Instance:
    device, _ = software_device()
    result = await instance.sdk.get_or_create_trustchain(device, instance.credentials)
    instance.trustchain = result.trustchain
    return instance


async def run_pairing(
    host: Instance, candidate: Instance, typed: Callable[[str], str] = str
) -> tuple[Any, Any]:
    """Pair ``host`` and ``candidate``; each side's result or exception."""
    screen = Screen()
    host_task = screen.host(host)
    url_task = asyncio.create_task(screen.urls.get())
    await asyncio.wait([host_task, url_task], return_when=asyncio.FIRST_COMPLETED)
    if not url_task.done():
        url_task.cancel()
        return await asyncio.gather(host_task, return_exceptions=True), None
    candidate_result = await asyncio.gather(
        pair_as_candidate(
            candidate.sdk,
            candidate.credentials,
            candidate.trustchain,
            scanned_url=url_task.result(),
            on_request_qr_code_input=screen.typist(typed),
        ),
        return_exceptions=True,
    )
    host_result = await asyncio.gather(host_task, return_exceptions=True)
    assert screen.requests in ([], [DigitsRequest(3, False)])
    return host_result[0], candidate_result[0]


async def test_host_with_trustchain_adds_the_candidate(instances: InstanceFactory) -> None:
    host = await with_trustchain(instances("Desktop host"))
    candidate = instances("Phone candidate")
    host_result, candidate_result = await run_pairing(host, candidate)
    assert host_result == host.tc
    assert candidate_result == host.tc
    members = await candidate.sdk.get_members(candidate_result, candidate.credentials)
    assert [m.name for m in members] == ["Desktop host", "Phone candidate"]


async def test_candidate_with_trustchain_adds_the_host(instances: InstanceFactory) -> None:
    host = instances("Desktop host")
    candidate = await with_trustchain(instances("Phone candidate"))
    host_result, candidate_result = await run_pairing(host, candidate)
    assert host_result == candidate.tc
    assert candidate_result == candidate.tc
    restored = await host.sdk.restore_trustchain(host_result, host.credentials)
    assert restored == candidate.tc


async def test_wrong_digits(instances: InstanceFactory) -> None:
    host = await with_trustchain(instances("Desktop host"))
    candidate = instances("Phone candidate")

    def mistype(digits: str) -> str:
        return str((int(digits) + 1) % 1000).zfill(3)

    host_result, candidate_result = await run_pairing(host, candidate, mistype)
    assert isinstance(host_result, InvalidDigitsError)
    assert isinstance(candidate_result, InvalidDigitsError)
    names = [m.name for m in await host.sdk.get_members(host.tc, host.credentials)]
    assert names == ["Desktop host"]  # nobody was added


async def test_both_have_a_trustchain(instances: InstanceFactory) -> None:
    host = await with_trustchain(instances("Desktop host"))
    candidate = await with_trustchain(instances("Phone candidate"))
    host_result, candidate_result = await run_pairing(host, candidate)
    assert isinstance(host_result, TrustchainAlreadyInitialized)
    assert isinstance(candidate_result, TrustchainAlreadyInitialized)
    assert str(candidate_result) == host.tc.root_id  # the host's id travels in the Failure


async def test_neither_has_a_trustchain(instances: InstanceFactory) -> None:
    host_result, candidate_result = await run_pairing(instances("host"), instances("candidate"))
    assert isinstance(host_result, NoTrustchainInitialized)
    assert isinstance(candidate_result, NoTrustchainInitialized)


async def test_invalid_scans(instances: InstanceFactory) -> None:
    candidate = instances("Phone")
    legacy = base64.b64encode(bytes((0x64, 0, 3, 0)) + bytes(120)).decode()
    for scanned, error in (
        ("https://example.com/", ScannedInvalidQrCode),
        (legacy, ScannedOldImportQrCode),
    ):
        with pytest.raises(error):
            await pair_as_candidate(
                candidate.sdk,
                candidate.credentials,
                None,
                scanned_url=scanned,
                on_request_qr_code_input=lambda request: "000",
            )


class RawPeer:
    """A peer speaking the wire protocol by hand (a Ledger Live stand-in, or an attacker)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.key = KeyPair.generate()
        self.publisher = self.key.public_key.hex()
        self.cipher = qr.SessionCipher.from_ecdh(self.key.private_key, qr.parse_pairing_url(url))

    def frame(self, message: str, payload: dict[str, Any], encrypt: bool = True) -> str:
        body = self.cipher.encrypt_payload(payload) if encrypt else payload
        return json.dumps(
            {"version": 1, "publisher": self.publisher, "message": message, "payload": body}
        )


async def host_session(
    host: Instance, peer_script: Callable[[RawPeer, Any], Awaitable[None]]
) -> Any:
    screen = Screen()
    host_task = screen.host(host)
    peer = RawPeer(await screen.urls.get())
    async with connect(peer.url) as ws:
        await peer_script(peer, (ws, screen))
    return (await asyncio.gather(host_task, return_exceptions=True))[0]


async def test_credentials_before_the_digit_check_are_refused(instances: InstanceFactory) -> None:
    host = await with_trustchain(instances("Desktop host"))
    attacker = instances("attacker")

    async def script(peer: RawPeer, io: Any) -> None:
        ws, _ = io
        await ws.send(
            peer.frame("InitiateHandshake", {"ephemeral_public_key": peer.publisher}, False)
        )
        json.loads(await ws.recv())  # HandshakeChallenge
        share = {"id": attacker.credentials.pubkey, "name": "attacker"}
        await ws.send(peer.frame("TrustchainShareCredential", share))
        await ws.wait_closed()

    result = await host_session(host, script)
    assert isinstance(result, QRCodeProtocolError)
    names = [m.name for m in await host.sdk.get_members(host.tc, host.credentials)]
    assert names == ["Desktop host"]


async def test_a_hand_written_candidate_pairs_with_the_host(instances: InstanceFactory) -> None:
    """The frames exactly as Ledger Live's candidate sends them, step by step."""
    host = await with_trustchain(instances("Desktop host"))
    joining = instances("Ledger Live mobile")
    received: dict[str, Any] = {}

    async def script(peer: RawPeer, io: Any) -> None:
        ws, screen = io
        await ws.send(
            peer.frame("InitiateHandshake", {"ephemeral_public_key": peer.publisher}, False)
        )
        challenge = qr.parse_message(await ws.recv())
        assert challenge.message == "HandshakeChallenge"
        assert challenge.publisher == qr.parse_pairing_url(peer.url).hex()
        assert peer.cipher.decrypt_message(challenge) == {"digits": 3, "connected": False}
        await ws.send(
            peer.frame("CompleteHandshakeChallenge", {"digits": await screen.digits.get()})
        )
        succeeded = qr.parse_message(await ws.recv())
        assert succeeded.message == "HandshakeCompletionSucceeded"
        assert peer.cipher.decrypt_message(succeeded) == {}
        share = {"id": joining.credentials.pubkey, "name": joining.name}
        await ws.send(peer.frame("TrustchainShareCredential", share))
        added = qr.parse_message(await ws.recv())
        assert added.message == "TrustchainAddedMember"
        received.update(peer.cipher.decrypt_message(added))

    assert await host_session(host, script) == host.tc
    assert Trustchain.from_json(received["trustchain"]) == host.tc
    assert set(received["trustchain"]) == {"rootId", "walletSyncEncryptionKey", "applicationPath"}


async def test_host_socket_closed_before_pairing(instances: InstanceFactory) -> None:
    host = await with_trustchain(instances("Desktop host"))

    async def script(peer: RawPeer, io: Any) -> None:
        ws, _ = io
        await ws.send(
            peer.frame("InitiateHandshake", {"ephemeral_public_key": peer.publisher}, False)
        )
        json.loads(await ws.recv())
        # the candidate leaves: the relay closes the room

    result = await host_session(host, script)
    assert isinstance(result, QRCodeWSClosed)
    assert result.time >= 0


async def test_candidate_gets_garbage_from_the_host(
    instances: InstanceFactory, server: Any
) -> None:
    candidate = instances("Phone")
    host_key = KeyPair.generate()
    url = qr.pairing_url(server.url, host_key.public_key)
    async with connect(url) as host_ws:
        task = asyncio.create_task(
            create_qr_code_candidate_instance(
                member_credentials=candidate.credentials,
                member_name=candidate.name,
                add_member=_never,
                scanned_url=url,
                on_request_qr_code_input=lambda request: "123",
            )
        )
        json.loads(await host_ws.recv())  # InitiateHandshake
        bogus = {
            "version": 1,
            "publisher": host_key.public_key.hex(),
            "message": "HandshakeChallenge",
        }
        await host_ws.send(json.dumps({**bogus, "payload": {"encrypted": "AAAA"}}))
        with pytest.raises(InvalidEncryptionKeyError):
            await task


async def _never(member: Any) -> Trustchain:
    raise AssertionError("add_member must not be called")


async def test_candidate_sees_the_host_leave(instances: InstanceFactory, server: Any) -> None:
    candidate = instances("Phone")
    host_key = KeyPair.generate()
    url = qr.pairing_url(server.url, host_key.public_key)
    async with connect(url) as host_ws:
        task = asyncio.create_task(
            create_qr_code_candidate_instance(
                member_credentials=candidate.credentials,
                member_name=candidate.name,
                add_member=_never,
                scanned_url=url,
                on_request_qr_code_input=lambda request: "123",
            )
        )
        json.loads(await host_ws.recv())  # InitiateHandshake arrived; the host goes away
    with pytest.raises(QRCodeWSClosed):
        await task


async def test_a_duplicate_handshake_is_refused(instances: InstanceFactory) -> None:
    """Ledger's newest pairing (``qrcode/protocol.ts``): a repeated message ends the session."""
    host = await with_trustchain(instances("Desktop host"))

    async def script(peer: RawPeer, io: Any) -> None:
        ws, _ = io
        hello = peer.frame("InitiateHandshake", {"ephemeral_public_key": peer.publisher}, False)
        await ws.send(hello)
        json.loads(await ws.recv())  # HandshakeChallenge
        await ws.send(hello)
        await ws.wait_closed()

    result = await host_session(host, script)
    assert isinstance(result, QRCodeProtocolError)
    assert "InitiateHandshake in state challenged" in str(result)


async def test_a_foreign_publisher_is_refused(instances: InstanceFactory) -> None:
    """The first peer is bound: a frame signed with another ephemeral key is refused, even
    one that decrypts (an active relay mixing two candidates)."""
    host = await with_trustchain(instances("Desktop host"))

    async def script(peer: RawPeer, io: Any) -> None:
        ws, screen = io
        await ws.send(
            peer.frame("InitiateHandshake", {"ephemeral_public_key": peer.publisher}, False)
        )
        json.loads(await ws.recv())  # HandshakeChallenge
        forged = json.loads(peer.frame("CompleteHandshakeChallenge", {"digits": "000"}))
        forged["publisher"] = KeyPair.generate().public_key.hex()
        await screen.digits.get()
        await ws.send(json.dumps(forged))
        await ws.wait_closed()

    result = await host_session(host, script)
    assert isinstance(result, QRCodeProtocolError)
    assert "bound peer" in str(result)
    names = [m.name for m in await host.sdk.get_members(host.tc, host.credentials)]
    assert names == ["Desktop host"]
