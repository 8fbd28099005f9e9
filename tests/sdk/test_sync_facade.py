"""The blocking facade, from plain (non-async) code, against the real server."""

from __future__ import annotations

import pytest

from ledgersync.sdk import SyncTrustchainSDK, TrustchainMember, TrustchainResultType
from ledgersync.sdk.errors import TrustchainEjected

from ..support.devices import software_device
from ..support.servers import RunningServer


def test_scripts_use_the_sdk_without_asyncio(server: RunningServer) -> None:
    device, _ = software_device()
    with (
        SyncTrustchainSDK(server.url, name="script") as first,
        SyncTrustchainSDK(server.url, name="other script") as second,
    ):
        me, other = first.init_member_credentials(), second.init_member_credentials()
        created = first.get_or_create_trustchain(device, me)
        assert created.type is TrustchainResultType.CREATED
        trustchain = created.trustchain
        first.add_member(trustchain, me, TrustchainMember(other.pubkey, "other script"))
        assert second.restore_trustchain(trustchain, other) == trustchain
        assert [m.name for m in first.get_members(trustchain, me)] == ["script", "other script"]
        sealed = first.encrypt_user_data(trustchain, b"data")
        assert second.decrypt_user_data(trustchain, sealed) == b"data"

        rotated = first.remove_member(device, trustchain, me, TrustchainMember(other.pubkey, ""))
        assert rotated.application_path == "m/0'/16'/1'"
        with pytest.raises(TrustchainEjected):
            second.restore_trustchain(trustchain, other)
        first.destroy_trustchain(rotated, me)
