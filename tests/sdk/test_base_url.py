"""The base URL is checked when an SDK is built, with a sentence saying what is expected.

Before, ``…/v1`` only failed at the first request (``LedgerAPI4xx: Not Found``, the SDK
adding ``/v1`` itself) and a URL without a scheme with "unsupported protocol".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledgersync.sdk import CloudSyncSDK, InvalidArgument, SyncTrustchainSDK, TrustchainSDK
from ledgersync.sdk.api import TrustchainAPI
from ledgersync.sdk.cloudsync_api import CloudSyncAPI
from ledgersync.sdk.http import check_base_url
from ledgersync.sdk.qr import create_qr_code_host_instance
from ledgersync.wallet.errors import WalletError
from ledgersync.wallet.instances import check_server_url

EXPECTED = "http(s)://host[:port][/prefix]"


async def _nothing(_: Any) -> None:
    return None


def cloud_sdk(url: str) -> CloudSyncSDK:
    sdk = TrustchainSDK("http://localhost:8080", name="laptop")
    return CloudSyncSDK(
        url, trustchain_sdk=sdk, get_current_version=lambda: None, save_new_update=_nothing
    )


BUILDERS: dict[str, Callable[[str], object]] = {
    "TrustchainSDK": lambda url: TrustchainSDK(url, name="laptop"),
    "CloudSyncSDK": cloud_sdk,
    "SyncTrustchainSDK": lambda url: SyncTrustchainSDK(url, name="script"),
    "TrustchainAPI": TrustchainAPI,
    "CloudSyncAPI": CloudSyncAPI,
}


@pytest.mark.parametrize("builder", sorted(BUILDERS))
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://localhost:8080/v1", "ends in /v1"),
        ("http://localhost:8080/v1/", "ends in /v1"),
        ("https://sync.example.org/ledger/v1", "ends in /v1"),
        ("http://localhost:8080/atomic/v1", "ends in /atomic/v1"),
        ("localhost:8080", "has no http:// or https:// scheme"),
        ("sync.example.org", "has no http:// or https:// scheme"),
        ("ws://localhost:8080", "has no http:// or https:// scheme"),
        ("ftp://localhost", "has no http:// or https:// scheme"),
        ("http://", "has no host"),
        ("http://localhost:99999", "has a bad port"),
        ("http://localhost:8080?x=1", "has a query or a fragment"),
        ("http://localhost:8080/#top", "has a query or a fragment"),
        ("http://local host:8080", "contains spaces"),
        ("", "has no http:// or https:// scheme"),
    ],
)
def test_a_bad_base_url_is_refused_when_the_sdk_is_built(
    builder: str, url: str, reason: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        BUILDERS[builder](url)
    message = str(caught.value)
    assert reason in message
    assert EXPECTED in message
    assert repr(url) in message


def test_the_message_says_which_url_to_give_instead() -> None:
    with pytest.raises(InvalidArgument, match="use 'http://localhost:8080' instead"):
        TrustchainSDK("http://localhost:8080/v1", name="laptop")
    with pytest.raises(InvalidArgument, match=r"use 'https://sync\.example\.org/ledger' instead"):
        cloud_sdk("https://sync.example.org/ledger/atomic/v1/")
    with pytest.raises(InvalidArgument, match="Cloud Sync API base URL"):
        cloud_sdk("localhost:8080")
    with pytest.raises(InvalidArgument, match="Key Ring API base URL"):
        TrustchainSDK("localhost:8080", name="laptop")


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("https://sync.example.org", "https://sync.example.org"),
        ("https://sync.example.org/ledger/", "https://sync.example.org/ledger"),
        ("http://127.0.0.1:8080/v1-mirror", "http://127.0.0.1:8080/v1-mirror"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("HTTPS://sync.example.org", "https://sync.example.org"),
    ],
)
async def test_good_base_urls(url: str, kept: str) -> None:
    assert check_base_url(url) == kept
    async with TrustchainSDK(url, name="laptop") as sdk:
        assert sdk.api_base_url == kept
    cloud = cloud_sdk(url)
    assert cloud.api.notifications_url == kept.replace("http", "ws", 1) + (
        "/atomic/v1/live/notifications"
    )
    await cloud.aclose()


async def test_qr_pairing_checks_the_url_before_connecting() -> None:
    shown: list[str] = []
    with pytest.raises(InvalidArgument, match="ends in /v1"):
        await create_qr_code_host_instance(
            trustchain_api_base_url="http://localhost:8080/v1",
            on_display_qr_code=shown.append,
            on_display_digits=shown.append,
            add_member=_nothing,  # type: ignore[arg-type]
            member_credentials=TrustchainSDK(
                "http://localhost:8080", name="x"
            ).init_member_credentials(),
            member_name="laptop",
        )
    assert shown == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:8080/v1", "ends in /v1, which the SDK adds itself"),
        ("http://localhost:8080/atomic/v1/", "ends in /atomic/v1"),
        ("localhost:8080", "is not a server URL"),
    ],
)
def test_a_wallet_instance_takes_the_urls_the_sdk_takes(url: str, message: str) -> None:
    with pytest.raises(WalletError, match=message):
        check_server_url(url)
    assert check_server_url("http://localhost:8080/") == "http://localhost:8080"
