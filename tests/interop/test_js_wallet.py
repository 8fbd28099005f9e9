"""Ledger Live's wallet sync, run by Ledger's own code, against a real ``ledgersync serve``.

Each JS instance is a Ledger Live-like wallet (``harness/walletsync.cjs``): local accounts,
account names and recent addresses; live-wallet 0.27.4's ``CloudSyncSDK`` (slug ``live``,
schema ``walletsync.schema``); Ledger's ``makeSaveNewUpdate`` / ``makeLocalIncrementalUpdate``
merging what it pulls; one iteration of Ledger's ``createWalletSyncWatchLoop`` per
``walletSyncRound``. Accounts are restored from their descriptors by a stand-in for
``liveqr/cross`` (no blockchain); everything else is Ledger's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .js import JsError, JsInstance

JsFor = Callable[..., JsInstance]

SEED = "04" + "ab" * 32


def account(tag: str, index: int = 0, currency: str = "ethereum") -> dict[str, Any]:
    """An account descriptor as Ledger Live writes it (id ``js:2:<currency>:<address>:``)."""
    address = f"0x{tag.encode().hex():0>40}"
    return {
        "id": f"js:2:{currency}:{address}:",
        "currencyId": currency,
        "freshAddress": address,
        "seedIdentifier": SEED,
        "derivationMode": "",
        "index": index,
    }


def wallets(js_for: JsFor, device_key: str, *names: str, **options: Any) -> list[JsInstance]:
    """Wallets in one trustchain: the first creates it, the others join with the device."""
    instances = [js_for(name, device_key, wallet=options or True) for name in names]
    for instance in instances:
        instance.call("getOrCreateTrustchain")
    return instances


def sync(instance: JsInstance) -> dict[str, Any]:
    result: dict[str, Any] = instance.call("walletSyncRound")
    return result


def no_changes(instance: JsInstance) -> bool:
    return instance.call("walletDiff")["hasChanges"] is False


def entries(state: dict[str, Any], currency: str) -> list[tuple[str, int]]:
    return [(e["address"], e["lastUsed"]) for e in state["recentAddresses"][currency]]


def test_accounts_names_and_recent_addresses_reach_the_other_wallet(
    js_for: JsFor, device_key: str
) -> None:
    alice, bob = wallets(js_for, device_key, "Alice", "Bob")
    main, savings, btc = account("main"), account("savings", 1), account("btc", 0, "bitcoin")
    for descriptor in (main, savings, btc):
        alice.call("walletAddAccount", **descriptor)
    alice.call("walletRename", id=main["id"], name="Main ✓")
    alice.call("walletAddRecentAddress", currencyId="ethereum", address="0x01", lastUsed=1000)
    alice.call("walletAddRecentAddress", currencyId="ethereum", address="0x02", lastUsed=2000)
    alice.call("walletAddRecentAddress", currencyId="bitcoin", address="bc1q", lastUsed=3000)

    pushed = sync(alice)
    assert (pushed["pushed"], pushed["version"]) == (True, 1)
    assert pushed["nextState"] == {
        "accounts": [main, savings, btc],
        "accountNames": {main["id"]: "Main ✓"},
        "recentAddresses": {
            "ethereum": [
                {"address": "0x02", "index": 0, "lastUsed": 2000},
                {"address": "0x01", "index": 1, "lastUsed": 1000},
            ],
            "bitcoin": [{"address": "bc1q", "index": 0, "lastUsed": 3000}],
        },
    }

    # Bob pulls and merges it all; he has nothing to push back.
    pulled = sync(bob)
    assert (pulled["pushed"], pulled["hasChanges"], pulled["version"]) == (False, False, 1)
    state = bob.call("walletState")
    assert state["accounts"] == [main, savings, btc]
    assert state["nonImportedAccountInfos"] == []
    assert state["accountNames"] == {main["id"]: "Main ✓"}
    assert entries(state, "ethereum") == [("0x02", 2000), ("0x01", 1000)]
    assert entries(state, "bitcoin") == [("bc1q", 3000)]
    assert state["latest"] == pushed["nextState"]

    # Bob's edits come back to Alice: a new account, a rename, a removal, an address reused.
    extra = account("extra", 2)
    bob.call("walletAddAccount", **extra)
    bob.call("walletRename", id=savings["id"], name="Savings")
    bob.call("walletRemoveAccount", id=btc["id"])
    bob.call("walletAddRecentAddress", currencyId="ethereum", address="0x01", lastUsed=4000)
    assert sync(bob)["version"] == 2
    assert sync(alice)["pushed"] is False
    state = alice.call("walletState")
    assert state["accounts"] == [main, savings, extra]
    assert state["accountNames"] == {main["id"]: "Main ✓", savings["id"]: "Savings"}
    assert entries(state, "ethereum") == [("0x01", 4000), ("0x02", 2000)]
    assert state["version"] == 2

    # A fixed point of Ledger's sync: nothing to push on either side, and a further round on
    # each changes nothing.
    assert no_changes(alice) and no_changes(bob)
    for instance in (alice, bob):
        again = sync(instance)
        assert (again["pushed"], again["hasChanges"], again["version"]) == (False, False, 2)
    assert alice.call("walletState")["latest"] == bob.call("walletState")["latest"]


def test_a_notification_drives_the_other_wallet(js_for: JsFor, device_key: str) -> None:
    """Ledger Live's watch loop also runs on Cloud Sync notifications: Bob waits for one."""
    alice, bob = wallets(js_for, device_key, "Alice", "Bob")
    alice.call("walletAddAccount", **account("a"))
    assert sync(alice)["version"] == 1
    subscription = bob.call("cloudListen")
    # The current version comes first: the subscription is live from then on.
    assert bob.wait_event("notification", timeout=20)["version"] == 1
    alice.call("walletAddAccount", **account("b", 1))
    assert sync(alice)["version"] == 2
    event = bob.wait_event("notification", timeout=20)
    assert (event["subscription"], event["version"]) == (subscription, 2)
    assert sync(bob)["version"] == 2
    assert bob.call("walletState")["accounts"] == [account("a"), account("b", 1)]
    bob.call("cloudUnlisten", subscription=subscription)


def test_an_unknown_top_level_key_survives_a_wallet_push(js_for: JsFor, device_key: str) -> None:
    alice, bob = wallets(js_for, device_key, "Alice", "Bob")
    main = account("main")
    alice.call("walletAddAccount", **main)
    sync(alice)
    # A newer Ledger Live writes a module this one does not know.
    future = {**alice.call("walletState")["latest"], "futureModule": {"kept": [1, "two"]}}
    validated = alice.call("walletValidate", data=future)
    assert validated["success"] is True
    assert validated["unknownKeys"] == ["futureModule"]
    assert "futureModule" not in validated["parsed"]  # the schema strips it; the SDK keeps it
    assert alice.call("cloudPush", data=future)["version"] == 2
    assert sync(bob)["pushed"] is False
    assert bob.call("walletState")["latest"]["futureModule"] == {"kept": [1, "two"]}

    bob.call("walletRename", id=main["id"], name="Renamed by Bob")
    pushed = sync(bob)
    assert (pushed["pushed"], pushed["version"]) == (True, 3)
    assert pushed["nextState"]["futureModule"] == {"kept": [1, "two"]}
    assert pushed["nextState"]["accountNames"] == {main["id"]: "Renamed by Bob"}
    assert sync(alice)["version"] == 3
    latest = alice.call("walletState")["latest"]
    assert latest["futureModule"] == {"kept": [1, "two"]}
    assert alice.call("walletState")["accountNames"] == {main["id"]: "Renamed by Bob"}
    assert no_changes(alice) and no_changes(bob)


def test_an_invalid_document_is_rejected(js_for: JsFor, device_key: str) -> None:
    (bob,) = wallets(js_for, device_key, "Bob")
    # Another member that writes any JSON (not a wallet) in the same trustchain.
    raw = js_for("Raw", device_key, cloud=True)
    raw.call("getOrCreateTrustchain")
    descriptor = account("a")
    del descriptor["index"]
    invalid = {"accounts": [descriptor]}

    validated = bob.call("walletValidate", data=invalid)
    assert validated["success"] is False
    assert [issue["path"] for issue in validated["issues"]] == [["accounts", 0, "index"]]
    assert bob.call("walletValidate", data={"accounts": [account("a")]})["success"] is True

    # Ledger's SDK refuses to push it, and refuses what it pulls.
    with pytest.raises(JsError) as error:
        bob.call("cloudPush", data=invalid)
    assert error.value.name == "ZodError"
    assert raw.call("cloudPush", data=invalid)["version"] == 1
    with pytest.raises(JsError) as error:
        sync(bob)
    assert error.value.name == "ZodError"
    state = bob.call("walletState")
    assert (state["accounts"], state["latest"], state["version"]) == ([], None, 0)


def test_a_failing_import_is_kept_and_not_deleted_remotely(js_for: JsFor, device_key: str) -> None:
    alice, bob = wallets(js_for, device_key, "Alice", "Bob")
    good, bad = account("good"), account("bad", 1)
    bob.call(
        "walletSetImportFailures",
        failures=[{"id": bad["id"], "name": "NetworkDown", "message": "no network"}],
    )
    for descriptor in (good, bad):
        alice.call("walletAddAccount", **descriptor)
    sync(alice)

    result = sync(bob)
    assert (result["pushed"], result["hasChanges"]) == (False, False)
    state = bob.call("walletState")
    assert state["accounts"] == [good]
    [info] = state["nonImportedAccountInfos"]
    assert (info["id"], info["attempts"]) == (bad["id"], 1)
    assert info["error"] == {"name": "NetworkDown", "message": "no network"}
    assert [a["id"] for a in state["latest"]["accounts"]] == [good["id"], bad["id"]]

    # Not retried before Ledger's backoff (30 s at first); still not deleted remotely.
    assert sync(bob)["pushed"] is False
    assert bob.call("walletState")["nonImportedAccountInfos"] == [info]
    assert sync(alice)["version"] == 1
    assert alice.call("walletState")["accounts"] == [good, bad]

    # Gone from the distant state: Bob drops it from his non-imported accounts.
    alice.call("walletRemoveAccount", id=bad["id"])
    assert sync(alice)["version"] == 2
    assert sync(bob)["version"] == 2
    state = bob.call("walletState")
    assert (state["accounts"], state["nonImportedAccountInfos"]) == ([good], [])
    assert no_changes(alice) and no_changes(bob)


def test_an_unparsable_account_id_is_not_imported(js_for: JsFor, device_key: str) -> None:
    """Ledger's accountDataToAccount decodes the id (``type:version:currency:address:mode``);
    the stand-in refuses fewer parts the same way."""
    alice, bob = wallets(js_for, device_key, "Alice", "Bob")
    odd = {**account("odd"), "id": "not-an-account-id"}
    alice.call("walletAddAccount", **account("ok"))
    alice.call("cloudPush", data={"accounts": [account("ok"), odd]})
    sync(bob)
    state = bob.call("walletState")
    assert state["accounts"] == [account("ok")]
    assert [info["id"] for info in state["nonImportedAccountInfos"]] == ["not-an-account-id"]
    assert no_changes(bob)


def test_a_removed_name_comes_back_from_a_ledger_live_peer(js_for: JsFor, device_key: str) -> None:
    """Ledger Live saves incoming names with setAccountNames, which merges: a name removed on
    one instance is kept by the other, whose next round pushes it back."""
    alice, bob = wallets(js_for, device_key, "Alice", "Bob")
    main = account("main")
    alice.call("walletAddAccount", **main)
    alice.call("walletRename", id=main["id"], name="Main")
    sync(alice)
    sync(bob)
    alice.call("walletRename", id=main["id"], name=None)
    assert alice.call("walletState")["accountNames"] == {}
    assert sync(alice)["nextState"]["accountNames"] == {}

    back = sync(bob)
    assert (back["pushed"], back["version"]) == (True, 3)
    assert back["nextState"]["accountNames"] == {main["id"]: "Main"}
    assert sync(alice)["version"] == 3
    assert alice.call("walletState")["accountNames"] == {main["id"]: "Main"}


def test_with_replacing_names_a_removed_name_stays_removed(js_for: JsFor, device_key: str) -> None:
    """The modules' own applyUpdate replaces all names: the removal reaches the other side."""
    alice, bob = wallets(js_for, device_key, "Alice", "Bob", accountNamesUpdate="replace")
    main = account("main")
    alice.call("walletAddAccount", **main)
    alice.call("walletRename", id=main["id"], name="Main")
    sync(alice)
    sync(bob)
    assert bob.call("walletState")["accountNames"] == {main["id"]: "Main"}
    alice.call("walletRename", id=main["id"], name="")
    sync(alice)
    result = sync(bob)
    assert (result["pushed"], result["version"]) == (False, 2)
    assert bob.call("walletState")["accountNames"] == {}
    assert no_changes(alice) and no_changes(bob)


def test_recent_addresses_are_most_recent_first_and_limited(js_for: JsFor, device_key: str) -> None:
    """Ledger Live's recent addresses store: a reused address moves to the front; at most 12
    addresses a currency, the oldest dropped."""
    alice, bob = wallets(js_for, device_key, "Alice", "Bob")
    for n in range(13):
        alice.call("walletAddRecentAddress", currencyId="ethereum", address=f"0x{n}", lastUsed=n)
    alice.call("walletAddRecentAddress", currencyId="ethereum", address="0x5", lastUsed=99)
    expected = [("0x5", 99)] + [(f"0x{n}", n) for n in range(12, 0, -1) if n != 5]
    assert entries(alice.call("walletState"), "ethereum") == expected
    distant = sync(alice)["nextState"]["recentAddresses"]["ethereum"]
    assert [e["index"] for e in distant] == list(range(12))
    sync(bob)
    assert entries(bob.call("walletState"), "ethereum") == expected
    assert no_changes(bob)


def test_deleted_data_resets_the_sync_state_and_the_wallet_pushes_again(
    js_for: JsFor, device_key: str
) -> None:
    alice, bob = wallets(js_for, device_key, "Alice", "Bob")
    alice.call("walletAddAccount", **account("a"))
    sync(alice)
    sync(bob)
    alice.call("cloudDestroy")
    assert alice.call("walletState")["version"] == 0

    # Bob's pull finds no data: deleted-data, then TrustchainOutdated from Ledger's SDK.
    with pytest.raises(JsError) as error:
        sync(bob)
    assert error.value.name == "TrustchainOutdated"
    state = bob.call("walletState")
    assert (state["latest"], state["version"]) == (None, 0)
    assert state["accounts"] == [account("a")]  # the local wallet keeps its accounts

    # Alice's next round pushes her wallet again; Bob adopts it without changes.
    again = sync(alice)
    assert (again["pushed"], again["version"]) == (True, 1)
    result = sync(bob)
    assert (result["pushed"], result["version"]) == (False, 1)
    assert bob.call("walletState")["accounts"] == [account("a")]
