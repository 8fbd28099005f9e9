"""Tokens expiring in the middle of flows, against the real server.

The server's clock is moved past a token's ``exp`` (or past its refresh window) at a precise
point of a flow: inside the device's approval prompt, between two requests of the flow. The
SDK must then refresh (inside the window) or authenticate again (past it) and finish.
"""

from __future__ import annotations

from ledgersync.device.approval import ApprovalKind
from ledgersync.sdk.credentials import TrustchainMember, TrustchainResultType

from ..support.devices import software_device
from ..support.instances import InstanceFactory, move_past
from ..support.servers import RunningServer
from ..support.tokens import token_claims


async def test_member_token_expires_then_is_refreshed(
    instances: InstanceFactory, server: RunningServer
) -> None:
    device, _ = software_device()
    instance = instances("Linux")
    result = await instance.sdk.get_or_create_trustchain(device, instance.credentials)
    trustchain = result.trustchain
    before = await instance.sdk.get_jwt(trustchain, instance.credentials)
    claims = token_claims(before.access_token)
    move_past(server, claims["exp"])
    assert server.clock() > claims["exp"]

    members = await instance.sdk.get_members(trustchain, instance.credentials)
    assert [m.name for m in members] == ["Linux"]
    after = token_claims(
        (await instance.sdk.get_jwt(trustchain, instance.credentials)).access_token
    )
    assert after["jti"] != claims["jti"]
    assert after["refreshExpiration"] == claims["refreshExpiration"]  # refreshed, not a new login


async def test_member_token_past_its_refresh_window_logs_in_again(
    instances: InstanceFactory, server: RunningServer
) -> None:
    device, _ = software_device()
    instance = instances("Linux")
    trustchain = (
        await instance.sdk.get_or_create_trustchain(device, instance.credentials)
    ).trustchain
    claims = token_claims(
        (await instance.sdk.get_jwt(trustchain, instance.credentials)).access_token
    )
    server.clock.advance(server.config.refresh_window + 1)

    await instance.sdk.add_member(
        trustchain,
        instance.credentials,
        TrustchainMember(instances("Mac").credentials.pubkey, "Mac"),
    )
    after = token_claims(
        (await instance.sdk.get_jwt(trustchain, instance.credentials)).access_token
    )
    assert after["refreshExpiration"] != claims["refreshExpiration"]  # a fresh login


async def test_device_token_expires_during_the_add_member_prompt(
    instances: InstanceFactory, server: RunningServer
) -> None:
    """Creation: login, list, Seed, post, refresh, list, read tree, then the AddMember prompt;
    the token expires there, so the derivation POST meets ``JWT is expired … /refresh``."""
    device, approvals = software_device()
    fired: list[float] = []

    def expire() -> None:
        server.clock.advance(server.config.access_token_ttl + 1)
        fired.append(server.clock())

    approvals.on(ApprovalKind.ADD_MEMBER, expire)
    instance = instances("Linux")
    result = await instance.sdk.get_or_create_trustchain(device, instance.credentials)
    assert fired
    assert result.type is TrustchainResultType.CREATED
    assert approvals.count(ApprovalKind.LOGIN) == 1  # refreshed, no second login on the device
    restored = await instance.sdk.restore_trustchain(result.trustchain, instance.credentials)
    assert restored == result.trustchain


async def test_device_token_past_its_window_during_rotation(
    instances: InstanceFactory, server: RunningServer
) -> None:
    """Rotation: the refresh window ends while the user looks at the CloseStream prompt; the
    SDK logs the device in again (a second login prompt) and completes the rotation."""
    phrase_device, approvals = software_device()
    first, second, third = instances("Linux"), instances("Mac"), instances("Phone")
    for instance in (first, second, third):
        result = await instance.sdk.get_or_create_trustchain(phrase_device, instance.credentials)
        instance.trustchain = result.trustchain

    logins_before = approvals.count(ApprovalKind.LOGIN)
    approvals.on(
        ApprovalKind.CLOSE_STREAM, lambda: server.clock.advance(server.config.refresh_window + 1)
    )
    target = TrustchainMember(second.credentials.pubkey, second.name)
    new = await first.sdk.remove_member(phrase_device, first.tc, first.credentials, target)
    assert approvals.count(ApprovalKind.CLOSE_STREAM) == 1
    assert approvals.count(ApprovalKind.LOGIN) == logins_before + 2  # the rotation's, and again
    assert new.application_path == "m/0'/16'/1'"
    assert await third.sdk.restore_trustchain(third.tc, third.credentials) == new
