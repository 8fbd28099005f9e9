"""Ledger's JavaScript SDK (0.15.2) against a real ``ledgersync serve``: Key Ring flows.

Every instance is a Node process running Ledger's ``SDK``; Ledger's ``SoftwareDevice`` plays
the hardware wallet and logs in with a TEST-key attestation. Assertions are on what Ledger's
code returns and on the error classes it throws; the trustchain the server stores is also
resolved with ``ledgersync.protocol``.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from ledgersync.protocol import parse_path, resolve_tree
from ledgersync.testing import LocalServer

from .js import JsError, JsInstance, shown_qr_url

OWNER = 0xFFFFFFFF
JsFor = Callable[..., JsInstance]


def member(instance: JsInstance, name: str) -> dict[str, Any]:
    creds = instance.call("getState")["creds"]
    return {"id": creds["pubkey"], "name": name, "permissions": OWNER}


def fetch_tree(server: LocalServer, instance: JsInstance) -> dict[str, str]:
    """``GET /v1/trustchain/{id}`` with the instance's member token (via Ledger's withAuth)."""
    jwt = instance.call("withAuth")
    root_id = instance.call("getState")["trustchain"]["rootId"]
    request = urllib.request.Request(
        f"{server.url}/v1/trustchain/{root_id}",
        headers={"Authorization": f"Bearer {jwt['accessToken']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        tree: dict[str, str] = json.loads(response.read())
        return tree


def pair_by_qr(host: JsInstance, candidate: JsInstance, *, digits: str | None = None) -> None:
    """Ledger's QR pairing through our relay; raises the candidate's error if any."""
    hosting = host.start("qrHost")
    url = shown_qr_url(host)
    assert url.startswith("ws://127.0.0.1:") and "/v1/qr?host=" in url
    scanning = candidate.start("qrCandidate", url=url)
    shown = host.wait_event("qrDigits")["digits"]
    requested = candidate.wait_event("qrDigitsRequested")
    assert requested["config"] == {"digits": 3, "connected": False}
    candidate.call("qrEnterDigits", digits=digits or shown)
    try:
        scanning.result(30)
    finally:
        try:
            hosting.result(30)
        except JsError:
            if digits is None:
                raise


def test_create_join_members_and_encryption(
    js_for: JsFor, device_key: str, server: LocalServer
) -> None:
    alice = js_for("Alice", device_key)
    created = alice.call("getOrCreateTrustchain")
    assert created["type"] == "created"
    trustchain = created["trustchain"]
    assert trustchain["applicationPath"] == "m/0'/16'/0'"
    assert len(trustchain["rootId"]) == 66 and trustchain["rootId"].startswith("00")
    assert alice.call("getMembers") == [member(alice, "Alice")]

    # A second instance with the same device joins: the device adds it.
    bob = js_for("Bob", device_key)
    joined = bob.call("getOrCreateTrustchain")
    assert joined["type"] == "updated"
    assert joined["trustchain"] == trustchain
    assert alice.call("getMembers") == [member(alice, "Alice"), member(bob, "Bob")]
    assert bob.call("getMembers") == alice.call("getMembers")

    # Running the device flow again changes nothing.
    assert alice.call("getOrCreateTrustchain")["type"] == "restored"

    secret = "00ff" * 100
    assert bob.call("decryptUserData", data=alice.call("encryptUserData", data=secret)) == secret

    # What the server stores is the tree Ledger's code built, valid for our resolver too.
    tree = fetch_tree(server, bob)
    assert set(tree) == {"m/", "m/16'"}
    resolved = resolve_tree([bytes.fromhex(s) for s in tree.values()])
    assert resolved.trustchain_id == trustchain["rootId"]
    app = resolved.get(parse_path("m/0'/16'/0'"))
    assert app is not None and [m.name for m in app.added_members] == ["Alice", "Bob"]


def test_qr_pairing_adds_the_candidate(js_for: JsFor, device_key: str) -> None:
    host = js_for("Host", device_key)
    trustchain = host.call("getOrCreateTrustchain")["trustchain"]
    candidate = js_for("Candidate", "11" * 32)  # never uses its device
    pair_by_qr(host, candidate)
    assert candidate.call("getState")["trustchain"] == trustchain
    assert candidate.call("getMembers") == [member(host, "Host"), member(candidate, "Candidate")]


def test_qr_pairing_adds_the_host_when_only_the_candidate_is_synced(
    js_for: JsFor, device_key: str
) -> None:
    candidate = js_for("Candidate", device_key)
    trustchain = candidate.call("getOrCreateTrustchain")["trustchain"]
    host = js_for("Host", "11" * 32)
    pair_by_qr(host, candidate)
    assert host.call("getState")["trustchain"] == trustchain
    assert host.call("getMembers") == [member(candidate, "Candidate"), member(host, "Host")]


def test_qr_pairing_with_wrong_digits_fails(js_for: JsFor, device_key: str) -> None:
    host = js_for("Host", device_key)
    host.call("getOrCreateTrustchain")
    candidate = js_for("Candidate", "11" * 32)
    hosting = host.start("qrHost")
    scanning = candidate.start("qrCandidate", url=shown_qr_url(host))
    shown = host.wait_event("qrDigits")["digits"]
    candidate.wait_event("qrDigitsRequested")
    candidate.call("qrEnterDigits", digits=f"{(int(shown) + 1) % 1000:03d}")
    with pytest.raises(JsError) as error:
        scanning.result(30)
    assert error.value.name == "InvalidDigitsError"
    with pytest.raises(JsError):
        hosting.result(30)
    assert candidate.call("getState")["trustchain"] is None
    assert host.call("getMembers") == [member(host, "Host")]


def test_qr_pairing_two_synced_instances_is_refused(js_for: JsFor, device_key: str) -> None:
    host = js_for("Host", device_key)
    host.call("getOrCreateTrustchain")
    candidate = js_for("Candidate", device_key)
    candidate.call("getOrCreateTrustchain")
    hosting = host.start("qrHost")
    scanning = candidate.start("qrCandidate", url=shown_qr_url(host))
    candidate.wait_event("qrDigitsRequested")
    candidate.call("qrEnterDigits", digits=host.wait_event("qrDigits")["digits"])
    with pytest.raises(JsError) as error:
        scanning.result(30)
    assert error.value.name == "TrustchainAlreadyInitialized"
    with pytest.raises(JsError) as host_error:
        hosting.result(30)
    assert host_error.value.name == "TrustchainAlreadyInitialized"


def test_remove_member_rotates_and_ejects(
    js_for: JsFor, device_key: str, server: LocalServer
) -> None:
    alice, bob, carol = (js_for(name, device_key) for name in ("Alice", "Bob", "Carol"))
    old = alice.call("getOrCreateTrustchain")["trustchain"]
    bob.call("getOrCreateTrustchain")
    alice.call("addMember", **member(carol, "Carol"))  # as the QR flow does
    carol.call("setState", trustchain=old)

    new = alice.call("removeMember", id=member(bob, "Bob")["id"], name="Bob")
    assert new["rootId"] == old["rootId"]
    assert new["applicationPath"] == "m/0'/16'/1'"
    assert new["walletSyncEncryptionKey"] != old["walletSyncEncryptionKey"]
    assert alice.call("getMembers") == [member(alice, "Alice"), member(carol, "Carol")]

    # The remaining member restores the new key; the removed one is ejected.
    assert carol.call("restoreTrustchain") == new
    assert carol.call("getMembers") == [member(alice, "Alice"), member(carol, "Carol")]
    for op in ("restoreTrustchain", "getMembers"):
        with pytest.raises(JsError) as error:
            bob.call(op)
        assert error.value.name == "TrustchainEjected"
        assert "Not a member of trustchain" in error.value.message

    # The server keeps the closed stream out of the tree and serves the new one.
    tree = fetch_tree(server, alice)
    resolved = resolve_tree([bytes.fromhex(s) for s in tree.values()])
    assert resolved.current_application_path(16) == parse_path("m/0'/16'/1'")


def test_remove_member_with_the_wrong_seed_is_not_allowed(js_for: JsFor, device_key: str) -> None:
    alice, bob = js_for("Alice", device_key), js_for("Bob", device_key)
    alice.call("getOrCreateTrustchain")
    bob.call("getOrCreateTrustchain")
    alice.call("setDevice", devicePrivateKey="33" * 32)  # another seed
    with pytest.raises(JsError) as error:
        alice.call("removeMember", id=member(bob, "Bob")["id"], name="Bob")
    assert error.value.name == "TrustchainNotAllowed"
    assert len(bob.call("getMembers")) == 2


def test_removing_yourself_is_refused(js_for: JsFor, device_key: str) -> None:
    alice = js_for("Alice", device_key)
    alice.call("getOrCreateTrustchain")
    with pytest.raises(JsError, match="must not be used to remove the current member"):
        alice.call("removeMember", id=member(alice, "Alice")["id"], name="Alice")


def test_device_flow_on_a_synced_instance(js_for: JsFor, device_key: str) -> None:
    """Ledger Live's "already secured" checks: same seed, and another seed."""
    alice = js_for("Alice", device_key)
    alice.call("getOrCreateTrustchain")
    with pytest.raises(JsError) as error:
        alice.call("getOrCreateTrustchain", passCurrent=True)
    assert error.value.name == "TrustchainAlreadyInitialized"
    alice.call("setDevice", devicePrivateKey="44" * 32)
    with pytest.raises(JsError) as error:
        alice.call("getOrCreateTrustchain", passCurrent=True)
    assert error.value.name == "TrustchainAlreadyInitializedWithOtherSeed"


def test_destroy_ejects_everyone_and_the_device_starts_over(js_for: JsFor, device_key: str) -> None:
    alice, bob = js_for("Alice", device_key), js_for("Bob", device_key)
    old = alice.call("getOrCreateTrustchain")["trustchain"]
    bob.call("getOrCreateTrustchain")
    assert len(bob.call("getMembers")) == 2

    bob.call("destroyTrustchain")
    bob.call("setState", trustchain=old)
    # Alice's cached token predates the deletion: force the refresh that time would bring.
    with pytest.raises(JsError):
        alice.call("withAuth", policy="refresh")
    for instance in (alice, bob):
        with pytest.raises(JsError) as error:
            instance.call("getMembers")
        assert error.value.name == "TrustchainEjected"

    again = alice.call("getOrCreateTrustchain")
    assert again["type"] == "created"
    assert again["trustchain"]["rootId"] != old["rootId"]


def test_a_stranger_cannot_destroy(js_for: JsFor, device_key: str) -> None:
    alice, stranger = js_for("Alice", device_key), js_for("Stranger", "55" * 32)
    trustchain = alice.call("getOrCreateTrustchain")["trustchain"]
    stranger.call("setState", trustchain=trustchain)
    with pytest.raises(JsError) as error:
        stranger.call("destroyTrustchain")
    assert error.value.name == "TrustchainEjected"
    assert alice.call("getMembers") == [member(alice, "Alice")]


def token_expiry(access_token: str) -> int:
    claims = access_token.split(".")[1]
    expiry: int = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["exp"]
    return expiry


def wait_past(moment: float, timeout: float = 30) -> None:
    """Wait until the wall clock is past ``moment`` (a token expiry), with a deadline."""
    deadline = time.monotonic() + timeout
    while time.time() <= moment:
        assert time.monotonic() < deadline, "the clock did not reach the token expiry"
        time.sleep(min(0.1, max(0.0, moment - time.time()) + 0.01))


@pytest.fixture(scope="module")
def short_token_server() -> Any:
    running = LocalServer(access_token_ttl=2, refresh_window=5).start()
    yield running
    running.close()


def test_token_expiry_refresh_and_reauthentication(
    js_for: JsFor, device_key: str, short_token_server: LocalServer
) -> None:
    """Access tokens live 2 s and can be refreshed for 5 s: Ledger's SDK refreshes an
    expired token, then logs in again once the refresh window is over."""
    url = short_token_server.url
    alice = js_for("Alice", device_key, url=url, cloud=True)
    bob = js_for("Bob", device_key, url=url, cloud=True)
    alice.call("getOrCreateTrustchain")
    bob.call("getOrCreateTrustchain")
    bob.call("cloudPull")
    first, bobs = alice.call("withAuth"), bob.call("withAuth")
    wait_past(max(token_expiry(first["accessToken"]), token_expiry(bobs["accessToken"])))

    # Expired access token: "JWT is expired, please call /refresh" → refresh, retry; on the
    # Key Ring API and on the Cloud Sync API.
    assert len(alice.call("getMembers")) == 2
    alice.call("cloudPush", data={"accountNames": {}})
    assert bob.call("cloudPull") == {"data": {"accountNames": {}}, "version": 1}
    assert bob.call("withAuth")["accessToken"] != bobs["accessToken"]
    refreshed = alice.call("withAuth")
    assert refreshed["accessToken"] != first["accessToken"]

    # Past the refresh window: the refresh is refused and Ledger's SDK logs in again.
    wait_past(token_expiry(first["accessToken"]) + 5)
    assert len(alice.call("getMembers")) == 2
    assert alice.call("withAuth")["accessToken"] != refreshed["accessToken"]

    # Ledger's tokenExpires scenario: a device token, its expiry, then the device flow.
    device_jwt = bob.call("deviceJwt")
    wait_past(token_expiry(device_jwt["accessToken"]))
    assert bob.call("getOrCreateTrustchain")["type"] == "restored"
    assert bob.call("deviceJwt")["accessToken"] != device_jwt["accessToken"]
