"""A blocking facade for scripts: the same SDK, each call run to completion on a private loop.

Nothing here has logic of its own; every method forwards to :class:`TrustchainSDK` or
:class:`CloudSyncSDK`. A :class:`SyncCloudSyncSDK` shares its trustchain facade's loop (the
two share HTTP clients and tokens), so create it from one. Do not use these inside a running
event loop: await the asyncio SDK there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..device.interface import Device
from .cloudsync import CloudSyncSDK, Merge, PullResult, PushResult, UpdateEvent
from .credentials import MemberCredentials, Trustchain, TrustchainMember, TrustchainResult
from .device import DeviceCallbacks
from .trustchain import TrustchainSDK

T = TypeVar("T")


class SyncTrustchainSDK:
    """``TrustchainSDK`` with blocking methods; use as a context manager (or call ``close``)."""

    def __init__(self, api_base_url: str, *, name: str, **options: Any) -> None:
        self._runner = asyncio.Runner()
        self.sdk = TrustchainSDK(api_base_url, name=name, **options)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run any coroutine of the SDK (or of a device) on this facade's loop."""
        return self._runner.run(coroutine)

    def close(self) -> None:
        self.run(self.sdk.aclose())
        self._runner.close()

    def __enter__(self) -> SyncTrustchainSDK:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def init_member_credentials(self) -> MemberCredentials:
        return self.sdk.init_member_credentials()

    def get_or_create_trustchain(
        self,
        device: Device,
        credentials: MemberCredentials,
        *,
        callbacks: DeviceCallbacks | None = None,
        topic: bytes = b"",
        current_trustchain: Trustchain | None = None,
    ) -> TrustchainResult:
        return self.run(
            self.sdk.get_or_create_trustchain(
                device,
                credentials,
                callbacks=callbacks,
                topic=topic,
                current_trustchain=current_trustchain,
            )
        )

    def restore_trustchain(
        self, trustchain: Trustchain, credentials: MemberCredentials
    ) -> Trustchain:
        return self.run(self.sdk.restore_trustchain(trustchain, credentials))

    def get_members(
        self, trustchain: Trustchain, credentials: MemberCredentials
    ) -> list[TrustchainMember]:
        return self.run(self.sdk.get_members(trustchain, credentials))

    def add_member(
        self, trustchain: Trustchain, credentials: MemberCredentials, member: TrustchainMember
    ) -> None:
        self.run(self.sdk.add_member(trustchain, credentials, member))

    def remove_member(
        self,
        device: Device,
        trustchain: Trustchain,
        credentials: MemberCredentials,
        member: TrustchainMember,
        *,
        callbacks: DeviceCallbacks | None = None,
    ) -> Trustchain:
        return self.run(
            self.sdk.remove_member(device, trustchain, credentials, member, callbacks=callbacks)
        )

    def destroy_trustchain(self, trustchain: Trustchain, credentials: MemberCredentials) -> None:
        self.run(self.sdk.destroy_trustchain(trustchain, credentials))

    def destroy_application(self, trustchain: Trustchain, credentials: MemberCredentials) -> bool:
        return self.run(self.sdk.destroy_application(trustchain, credentials))

    def encrypt_user_data(self, trustchain: Trustchain, data: bytes) -> bytes:
        return self.sdk.encrypt_user_data(trustchain, data)

    def decrypt_user_data(self, trustchain: Trustchain, data: bytes) -> bytes:
        return self.sdk.decrypt_user_data(trustchain, data)


class SyncCloudSyncSDK:
    """``CloudSyncSDK`` with blocking methods, on ``trustchain``'s loop.

    ``save_new_update`` is a plain function here.
    """

    def __init__(
        self,
        api_base_url: str,
        *,
        trustchain: SyncTrustchainSDK,
        get_current_version: Callable[[], int | None],
        save_new_update: Callable[[UpdateEvent], None],
        **options: Any,
    ) -> None:
        async def save(event: UpdateEvent) -> None:
            save_new_update(event)

        self._facade = trustchain
        self.sdk = CloudSyncSDK(
            api_base_url,
            trustchain_sdk=trustchain.sdk,
            get_current_version=get_current_version,
            save_new_update=save,
            **options,
        )

    def close(self) -> None:
        self._facade.run(self.sdk.aclose())

    def __enter__(self) -> SyncCloudSyncSDK:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def pull(self, trustchain: Trustchain, credentials: MemberCredentials) -> PullResult:
        return self._facade.run(self.sdk.pull(trustchain, credentials))

    def push(
        self,
        trustchain: Trustchain,
        credentials: MemberCredentials,
        data: Any,
        *,
        merge: Merge | None = None,
        max_attempts: int = 3,
    ) -> PushResult:
        return self._facade.run(
            self.sdk.push(trustchain, credentials, data, merge=merge, max_attempts=max_attempts)
        )

    def destroy(self, trustchain: Trustchain, credentials: MemberCredentials) -> None:
        self._facade.run(self.sdk.destroy(trustchain, credentials))
