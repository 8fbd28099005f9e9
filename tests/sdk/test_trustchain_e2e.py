"""TrustchainSDK against the real server: every flow of docs/api.md, "SDK flows"."""

from __future__ import annotations

import pytest

from ledgersync.device.approval import ApprovalKind
from ledgersync.device.identity import generate_mnemonic
from ledgersync.protocol.builders import close_stream_block
from ledgersync.protocol.paths import parse_path
from ledgersync.protocol.tree import resolve_tree
from ledgersync.sdk.auth import AuthPolicy
from ledgersync.sdk.credentials import Trustchain, TrustchainMember, TrustchainResultType
from ledgersync.sdk.device import DeviceCallbacks
from ledgersync.sdk.errors import (
    DecryptionError,
    MemberNotFound,
    RemoveSelfRefused,
    TrustchainAlreadyInitialized,
    TrustchainAlreadyInitializedWithOtherSeed,
    TrustchainEjected,
    TrustchainNotAllowed,
    TrustchainOutdated,
    UserRefusedOnDevice,
)

from ..support.devices import DeviceFactory, software_device
from ..support.instances import Instance, InstanceFactory
from ..support.servers import RunningServer


async def server_tree(instance: Instance):  # type: ignore[no-untyped-def]
    """The trustchain as the server holds it now, resolved locally."""
    sdk, trustchain = instance.sdk, instance.tc
    jwt = await sdk.get_jwt(trustchain, instance.credentials, AuthPolicy.NO_CACHE)
    streams = await sdk.api.get_trustchain(jwt, trustchain.root_id)
    return resolve_tree([bytes.fromhex(value) for value in streams.values()])


async def join(instance: Instance, device, **kwargs) -> TrustchainResultType:  # type: ignore[no-untyped-def]
    result = await instance.sdk.get_or_create_trustchain(device, instance.credentials, **kwargs)
    instance.trustchain = result.trustchain
    return result.type


async def test_create_then_join_then_restore(
    instances: InstanceFactory, make_device: DeviceFactory
) -> None:
    device, approvals = make_device()
    first, second = instances("Linux first"), instances("Mac second")
    events: list[str] = []
    callbacks = DeviceCallbacks(
        on_start_user_interaction=lambda: events.append("start"),
        on_end_user_interaction=lambda: events.append("end"),
        on_initial_response=lambda trustchains: events.append(f"initial {len(trustchains)}"),
    )
    assert await join(first, device, callbacks=callbacks) is TrustchainResultType.CREATED
    assert events[:3] == ["start", "end", "initial 0"]
    assert first.tc.application_path == "m/0'/16'/0'"
    assert len(first.tc.root_id) == 66 and first.tc.root_id.startswith("00")

    assert await join(second, device) is TrustchainResultType.UPDATED
    assert second.tc == first.tc  # same id, path and key
    # Again: already a member → restored, nothing sent.
    assert await join(second, device) is TrustchainResultType.RESTORED
    kinds = [request.kind for request in approvals.requests]
    assert kinds.count(ApprovalKind.ADD_MEMBER) == 2  # one per instance, none for the restore

    tree = await server_tree(first)
    stream = tree.get(parse_path("m/0'/16'/0'"))
    assert stream is not None
    assert [m.name for m in stream.added_members] == ["Linux first", "Mac second"]
    assert await first.sdk.restore_trustchain(first.tc, first.credentials) == first.tc
    members = await second.sdk.get_members(second.tc, second.credentials)
    assert [(m.id, m.name) for m in members] == [
        (first.credentials.pubkey, "Linux first"),
        (second.credentials.pubkey, "Mac second"),
    ]


async def test_already_initialized_cases(instances: InstanceFactory) -> None:
    device, _ = software_device()
    other_device, _ = software_device()
    instance = instances("Linux")
    await join(instance, device)
    with pytest.raises(TrustchainAlreadyInitialized):
        await join(instance, device, current_trustchain=instance.tc)
    with pytest.raises(TrustchainAlreadyInitializedWithOtherSeed):
        await join(instance, other_device, current_trustchain=instance.tc)


async def test_same_seed_on_another_device_joins_the_same_trustchain(
    instances: InstanceFactory,
) -> None:
    phrase = generate_mnemonic()
    first_device, _ = software_device(phrase)
    restored_device, _ = software_device(phrase)  # the same seed restored on another Ledger
    first, second = instances("Linux"), instances("Mac")
    assert await join(first, first_device) is TrustchainResultType.CREATED
    assert await join(second, restored_device) is TrustchainResultType.UPDATED
    assert second.tc == first.tc


async def test_add_member_without_device_and_user_data(instances: InstanceFactory) -> None:
    device, _ = software_device()
    owner, newcomer = instances("Linux owner"), instances("Phone newcomer")
    await join(owner, device)
    member = TrustchainMember(newcomer.credentials.pubkey, newcomer.name)
    await owner.sdk.add_member(owner.tc, owner.credentials, member)
    await owner.sdk.add_member(owner.tc, owner.credentials, member)  # idempotent
    # The newcomer restores with its own key.
    newcomer.trustchain = await newcomer.sdk.restore_trustchain(owner.tc, newcomer.credentials)
    assert newcomer.tc == owner.tc
    names = [m.name for m in await newcomer.sdk.get_members(newcomer.tc, newcomer.credentials)]
    assert names == ["Linux owner", "Phone newcomer"]

    sealed = owner.sdk.encrypt_user_data(owner.tc, b"hello")
    assert newcomer.sdk.decrypt_user_data(newcomer.tc, sealed) == b"hello"
    stranger = Trustchain(owner.tc.root_id, bytes(31) + b"\x01", owner.tc.application_path)
    with pytest.raises(DecryptionError):
        owner.sdk.decrypt_user_data(stranger, sealed)


async def test_refusals_on_the_device(
    instances: InstanceFactory, make_device: DeviceFactory
) -> None:
    device, approvals = make_device()
    instance = instances("Linux")
    approvals.refuse = {ApprovalKind.LOGIN}
    with pytest.raises(UserRefusedOnDevice):
        await join(instance, device)
    approvals.refuse = {ApprovalKind.ADD_MEMBER}
    with pytest.raises(UserRefusedOnDevice):
        await join(instance, device)
    approvals.refuse = set()
    # The refused AddMember left the root in place: this run only derives the stream.
    assert await join(instance, device) is TrustchainResultType.UPDATED


async def test_wrong_seed_cannot_remove(
    instances: InstanceFactory, make_device: DeviceFactory
) -> None:
    device, _ = make_device()
    wrong, _ = make_device()
    first, second = instances("Linux"), instances("Mac")
    await join(first, device)
    await join(second, device)
    with pytest.raises(TrustchainNotAllowed):
        await first.sdk.remove_member(
            wrong, first.tc, first.credentials, TrustchainMember(second.credentials.pubkey, "Mac")
        )


async def test_remove_member_refusals(
    instances: InstanceFactory, make_device: DeviceFactory
) -> None:
    device, approvals = make_device()
    first, second = instances("Linux"), instances("Mac")
    await join(first, device)
    await join(second, device)
    me = TrustchainMember(first.credentials.pubkey, first.name)
    with pytest.raises(RemoveSelfRefused):
        await first.sdk.remove_member(device, first.tc, first.credentials, me)
    ghost = TrustchainMember(instances("ghost").credentials.pubkey, "ghost")
    with pytest.raises(MemberNotFound):
        await first.sdk.remove_member(device, first.tc, first.credentials, ghost)
    approvals.refuse = {ApprovalKind.CLOSE_STREAM}
    target = TrustchainMember(second.credentials.pubkey, second.name)
    with pytest.raises(UserRefusedOnDevice):
        await first.sdk.remove_member(device, first.tc, first.credentials, target)
    # Nothing changed: the second instance is still a member of the same stream.
    assert await second.sdk.restore_trustchain(second.tc, second.credentials) == second.tc


async def test_rotation_among_five_members(
    instances: InstanceFactory, make_device: DeviceFactory
) -> None:
    device, _ = make_device()
    members = [instances(f"Instance {i}") for i in range(5)]
    for member in members:
        await join(member, device)
    remover, removed, others = members[0], members[1], members[2:]
    rotated_keys: list[Trustchain] = []

    class Hook:
        async def on_trustchain_rotation(self, sdk, old, credentials):  # type: ignore[no-untyped-def]
            assert old == remover.tc

            async def after(new: Trustchain) -> None:
                rotated_keys.append(new)

            return after

    remover.sdk.lifecycle = Hook()
    target = TrustchainMember(removed.credentials.pubkey, removed.name)
    new = await remover.sdk.remove_member(device, remover.tc, remover.credentials, target)
    assert rotated_keys == [new]
    assert new.application_path == "m/0'/16'/1'"
    assert new.root_id == remover.tc.root_id
    assert new.wallet_sync_encryption_key != remover.tc.wallet_sync_encryption_key
    old = remover.tc
    remover.trustchain = new

    tree = await server_tree(remover)
    assert tree.get(parse_path("m/0'/16'/1'")) is not None
    # One block for the device's Derive, then one chained block per remaining member.
    new_stream = tree.get(parse_path("m/0'/16'/1'"))
    assert new_stream is not None and new_stream.height == 1 + len(others)
    assert [m.name for m in new_stream.added_members] == [remover.name] + [o.name for o in others]

    # The removed member is ejected; its cached token does not save it.
    with pytest.raises(TrustchainEjected):
        await removed.sdk.restore_trustchain(removed.tc, removed.credentials)
    # The others are outdated with their old view, then restore the new key.
    for other in others:
        with pytest.raises(TrustchainOutdated):
            await other.sdk.get_jwt(other.tc, other.credentials, AuthPolicy.REFRESH)
        restored = await other.sdk.restore_trustchain(other.tc, other.credentials)
        assert restored == new
        other.trustchain = restored
        assert (
            other.sdk.decrypt_user_data(restored, remover.sdk.encrypt_user_data(new, b"x")) == b"x"
        )
    assert old.application_path == "m/0'/16'/0'"
    names = [m.name for m in await others[0].sdk.get_members(new, others[0].credentials)]
    assert names == [remover.name] + [o.name for o in others]


async def test_destroy_trustchain(instances: InstanceFactory, server: RunningServer) -> None:
    device, _ = software_device()
    first, second = instances("Linux"), instances("Mac")
    await join(first, device)
    await join(second, device)
    await first.sdk.destroy_trustchain(first.tc, first.credentials)
    with pytest.raises((TrustchainEjected, TrustchainNotAllowed)):
        await second.sdk.restore_trustchain(second.tc, second.credentials)
    # The device can start over: a new trustchain is created.
    assert await join(first, device) is TrustchainResultType.CREATED


async def test_closed_application_stream(instances: InstanceFactory) -> None:
    """A stream closed without rotation (Ledger's destroyApplication): restoring is refused,
    and the device flow reopens the application on the next index."""
    device, _ = software_device()
    instance = instances("Linux")
    await join(instance, device)
    tree = await server_tree(instance)
    stream = tree.get(parse_path(instance.tc.application_path))
    assert stream is not None
    block = close_stream_block(instance.credentials.key_pair, stream.last_hash)
    jwt = await instance.sdk.get_jwt(instance.tc, instance.credentials)
    await instance.sdk.api.put_commands(
        jwt, instance.tc.root_id, instance.tc.application_path, [block.encode()]
    )
    with pytest.raises(TrustchainEjected):  # it cannot even log in any more
        await instance.sdk.restore_trustchain(instance.tc, instance.credentials)
    assert await join(instance, device) is TrustchainResultType.UPDATED
    assert instance.tc.application_path == "m/0'/16'/1'"
