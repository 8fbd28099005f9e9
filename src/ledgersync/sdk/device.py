"""The SDK's use of a Ledger Sync device, and the boundary where device errors are mapped.

The SDK asks four things of a :class:`~ledgersync.device.interface.Device`
(docs/api.md, "SDK flows"): a login (the user confirms), the root ``[Seed]`` block,
sharing an application stream with a member (``[Derive, AddMember, PublishKey]`` when the
stream does not exist yet, ``[AddMember, PublishKey]`` appended to it otherwise; the user
confirms the AddMember) and ``[CloseStream]`` (the user confirms).

Device failures are translated once, here, as Ledger's ``HWDeviceProvider`` does: a refusal
becomes :class:`UserRefusedOnDevice`, a device that does not hold this trustchain's seed
(0xB007) :class:`TrustchainNotAllowed`, anything else :class:`DeviceFailure`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..device import errors as device_errors
from ..device.interface import Device
from ..device.requests import AddMemberRequest, CloseRequest, DeriveRequest, SeedRequest
from ..protocol.block import Block
from ..protocol.challenge import Challenge, SeedIdResponse
from ..protocol.paths import Path
from ..protocol.tree import StreamTree
from .errors import DeviceFailure, TrustchainNotAllowed, UserRefusedOnDevice

T = TypeVar("T")


@dataclass(frozen=True)
class DeviceCallbacks:
    """Hooks around device interaction (Ledger's ``TrustchainDeviceCallbacks``)."""

    #: Called before the device is asked for something the user may have to confirm.
    on_start_user_interaction: Callable[[], None] | None = None
    #: Called once the device answered (or failed).
    on_end_user_interaction: Callable[[], None] | None = None
    #: ``get_or_create_trustchain``: the device's trustchains as first listed by the server.
    on_initial_response: Callable[[Mapping[str, Any]], None] | None = None


async def with_device(job: Callable[[], Awaitable[T]], callbacks: DeviceCallbacks | None) -> T:
    """Run one device interaction, telling the callbacks and translating failures."""
    if callbacks and callbacks.on_start_user_interaction:
        callbacks.on_start_user_interaction()
    try:
        return await job()
    except device_errors.UserRefusedError as exc:
        raise UserRefusedOnDevice(str(exc)) from exc
    except device_errors.BadStateError as exc:
        raise TrustchainNotAllowed(str(exc)) from exc
    except device_errors.DeviceError as exc:
        raise DeviceFailure(str(exc)) from exc
    finally:
        if callbacks and callbacks.on_end_user_interaction:
            callbacks.on_end_user_interaction()


async def sign_challenge(device: Device, challenge_tlv: bytes) -> SeedIdResponse:
    return await device.sign_challenge(Challenge.decode(challenge_tlv))


async def create_root(device: Device, topic: bytes) -> Block:
    return await device.sign_block(SeedRequest(topic), None)


async def share(
    device: Device, tree: StreamTree, path: Path, member: bytes, name: str, permissions: int
) -> Block:
    """The block giving ``member`` the key of the stream at ``path``, deriving it if new."""
    if tree.get(path) is None:
        return await device.sign_block(DeriveRequest(path, member, name, permissions), tree)
    return await device.sign_block(AddMemberRequest(path, member, name, permissions), tree)


async def close(device: Device, tree: StreamTree, path: Path) -> Block:
    return await device.sign_block(CloseRequest(path), tree)
