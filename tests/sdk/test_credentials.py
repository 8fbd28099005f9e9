"""Persisted state: Ledger Live's JSON shapes, validation, and secrets kept out of ``repr``."""

from __future__ import annotations

import pytest

from ledgersync.sdk.credentials import MemberCredentials, Trustchain, TrustchainMember
from ledgersync.sdk.errors import InvalidArgument, LedgerSyncError


def test_member_credentials_round_trip_and_hide_the_key() -> None:
    credentials = MemberCredentials.generate()
    assert MemberCredentials.from_json(credentials.to_json()) == credentials
    assert set(credentials.to_json()) == {"pubkey", "privatekey"}
    assert credentials.pubkey == credentials.public_key.hex()
    assert credentials.private_key.hex() not in repr(credentials)
    assert MemberCredentials.from_private_key(credentials.private_key) == credentials


@pytest.mark.parametrize(
    "value",
    [
        None,
        {},
        {"pubkey": "zz", "privatekey": "00" * 32},
        {"pubkey": "02" * 33, "privatekey": "11" * 32},  # key pair mismatch
        {"pubkey": "02" * 33, "privatekey": "00" * 32},  # zero is not a key
    ],
)
def test_bad_member_credentials(value: object) -> None:
    with pytest.raises(InvalidArgument):
        MemberCredentials.from_json(value)


def test_trustchain_round_trip_and_hide_the_key() -> None:
    trustchain = Trustchain("00" + "ab" * 32, bytes(range(32)), "m/0'/16'/0'")
    assert Trustchain.from_json(trustchain.to_json()) == trustchain
    assert trustchain.to_json()["walletSyncEncryptionKey"] == bytes(range(32)).hex()
    assert bytes(range(32)).hex() not in repr(trustchain)


@pytest.mark.parametrize(
    "value",
    [
        {"rootId": "00", "walletSyncEncryptionKey": "00" * 31, "applicationPath": "m/0'/16'/0'"},
        {"rootId": "00", "walletSyncEncryptionKey": "00" * 32, "applicationPath": "0'/16'"},
        {"rootId": "00", "walletSyncEncryptionKey": "00" * 32, "applicationPath": "m/0h/16h/0h"},
        {"rootId": 1, "walletSyncEncryptionKey": "00" * 32, "applicationPath": "m/0'/16'/0'"},
        [],
    ],
)
def test_bad_trustchains(value: object) -> None:
    with pytest.raises(InvalidArgument):
        Trustchain.from_json(value)


def test_members() -> None:
    key = MemberCredentials.generate().pubkey
    member = TrustchainMember.from_json({"id": key, "name": "Linux abcde"})
    assert member.to_json() == {"id": key, "name": "Linux abcde", "permissions": 0xFFFFFFFF}
    for bad in (
        {"id": key},
        {"id": "02" + "00" * 32, "name": "x"},
        {"id": key, "name": "x", "permissions": "1"},
    ):
        with pytest.raises(LedgerSyncError):
            TrustchainMember.from_json(bad)
