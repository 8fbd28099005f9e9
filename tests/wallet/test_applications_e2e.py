"""The wallet's deactivation in a trustchain that holds another application.

Ledger's newer SDK (ledger-live ``sdk.ts`` ``destroyApplication`` @2384fcba, PR #18568):
turning Ledger Sync off closes only its own stream when another application (here the wallet
CLI's "ring", application 17) stays open, and deletes the trustchain only otherwise.
"""

from __future__ import annotations

import pytest

from ledgersync.device.software import SoftwareDevice
from ledgersync.sdk import TrustchainResultType, TrustchainSDK
from ledgersync.testing import LocalServer
from ledgersync.wallet import InstancePurged, account_descriptor, add_account

from ..support.wallets import ETH, WalletFactory


async def test_deactivate_keeps_the_other_application(
    wallets: WalletFactory, device: SoftwareDevice, server: LocalServer
) -> None:
    laptop, phone = wallets("laptop"), wallets("phone")
    await laptop.edit(lambda doc: add_account(doc, account_descriptor(ETH), "Main"))
    await laptop.activate(device)
    await phone.activate(device)
    await phone.sync()
    async with TrustchainSDK(server.url, name="ring", application_id=17) as ring:
        credentials = ring.init_member_credentials()
        joined = (await ring.get_or_create_trustchain(device, credentials)).trustchain
        assert joined.root_id == laptop.record().trustchain.root_id  # type: ignore[union-attr]

        await laptop.deactivate()
        assert laptop.record().purged.reason == "deactivated"  # type: ignore[union-attr]
        with pytest.raises(InstancePurged):
            await phone.sync()

        # The trustchain and the ring application are still there.
        ring.invalidate_jwt()
        assert await ring.restore_trustchain(joined, credentials) == joined
        members = await ring.get_members(joined, credentials)
        assert [member.id for member in members] == [credentials.pubkey]


async def test_deactivate_alone_deletes_the_trustchain(
    wallets: WalletFactory, device: SoftwareDevice, server: LocalServer
) -> None:
    laptop, phone = wallets("laptop"), wallets("phone")
    await laptop.activate(device)
    await phone.activate(device)
    await laptop.deactivate()
    # The device owns no trustchain any more: another application's activation creates one.
    async with TrustchainSDK(server.url, name="ring", application_id=17) as ring:
        result = await ring.get_or_create_trustchain(device, ring.init_member_credentials())
    assert result.type is TrustchainResultType.CREATED
