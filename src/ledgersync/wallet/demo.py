"""``ledgersync demo``: a self-contained tour of Ledger Sync, from a server to deactivation.

Everything is real and local: a ``ledgersync serve`` subprocess on a free loopback port with
a temporary database (:class:`~ledgersync.testing.LocalServer`), a software device from a
fresh recovery phrase (in memory), and three instances (``laptop``, ``phone``, ``tablet``)
in a temporary home. The tour:

1. the laptop creates the trustchain with the device; the phone joins it with the device;
   the tablet joins by QR pairing with the laptop (the digits are passed along in code);
2. the phone and the tablet sync live (:meth:`Wallet.watch`); the laptop renames an account
   and sets a label, and the time from the edit to its arrival on each is measured;
3. the laptop removes the tablet with the device: the key is rotated, the data re-encrypted,
   the phone follows the rotation and the tablet finds itself ejected and purged;
4. the phone exports CSV and BIP-329; the laptop turns Ledger Sync off (deactivate) and the
   phone's watcher sees it.

Each step is reported to ``emit`` as it happens (:class:`DemoEvent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..device.approval import approve_all
from ..device.identity import generate_mnemonic
from ..device.software import SoftwareDevice
from ..sdk import DigitsRequest
from . import actions, edits
from .document import Document
from .errors import InstancePurged, WalletError
from .exports import accounts_with_names
from .instances import InstanceStore
from .session import SyncReport, Wallet

ETH = "js:2:ethereum:0x71C7656EC7ab88b098defB751B7401B5f6d8976F:"
BTC = (
    "js:2:bitcoin:xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189o"
    "LKnC5fSwqPfgyP3hooxujYzAu3fDVmz:native_segwit"
)
TXID = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
#: How long to wait for something to arrive before the tour gives up.
ARRIVAL_TIMEOUT = 10.0
#: The watchers' poll interval (they are woken by notifications well before it).
POLL_INTERVAL = 1.0


@dataclass(frozen=True)
class DemoEvent:
    """``kind``: ``step`` (a new step), ``info`` (a line about it) or ``text`` (a block of
    output, such as an export); ``elapsed``: seconds since the tour started."""

    kind: str
    text: str
    elapsed: float


class DemoFailed(WalletError):
    """A step of the tour did not happen as it should."""


class _Watcher:
    """``Wallet.watch`` on one instance, in a task, its reports in a queue."""

    def __init__(self, wallet: Wallet) -> None:
        self.wallet = wallet
        self.stop = asyncio.Event()
        self.reports: asyncio.Queue[SyncReport] = asyncio.Queue()
        self.errors: list[WalletError] = []
        self.listening = asyncio.Event()
        self.task = asyncio.create_task(
            wallet.watch(
                self.stop,
                on_report=self.reports.put_nowait,
                on_error=self.errors.append,
                poll_interval=POLL_INTERVAL,
                on_listening=self.listening.set,
            )
        )

    async def subscribed(self) -> None:
        """Wait until the watcher listens to the server's notifications."""
        waiter = asyncio.ensure_future(self.listening.wait())
        async with asyncio.timeout(ARRIVAL_TIMEOUT):
            await asyncio.wait([waiter, self.task], return_when="FIRST_COMPLETED")
        waiter.cancel()
        if not self.listening.is_set():
            self.task.result()
            raise DemoFailed(f"the watcher of {self.wallet.name!r} stopped")

    async def next_report(self, matches: Callable[[SyncReport], bool]) -> SyncReport:
        async with asyncio.timeout(ARRIVAL_TIMEOUT):
            while True:
                getter = asyncio.ensure_future(self.reports.get())
                done, _ = await asyncio.wait([getter, self.task], return_when="FIRST_COMPLETED")
                if getter not in done:
                    getter.cancel()
                    self.task.result()  # raises what ended the loop
                    raise DemoFailed(f"the watcher of {self.wallet.name!r} stopped")
                report = getter.result()
                if matches(report):
                    return report

    async def ended(self) -> BaseException | None:
        """Wait for the loop to end by itself; what ended it."""
        async with asyncio.timeout(ARRIVAL_TIMEOUT):
            await asyncio.wait([self.task])
        return self.task.exception()

    async def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(WalletError, asyncio.CancelledError):
            await self.task


def _names(document: Document) -> str:
    accounts = accounts_with_names(document)
    return ", ".join(f"{account['name'] or account['id']}" for account in accounts) or "none"


async def run_demo(emit: Callable[[DemoEvent], None]) -> float:
    """Run the tour, reporting each step to ``emit``; returns its duration in seconds."""
    from ..testing import LocalServer  # only the demo needs a server subprocess

    started = time.monotonic()

    def say(kind: str, text: str) -> None:
        emit(DemoEvent(kind, text, time.monotonic() - started))

    with tempfile.TemporaryDirectory(prefix="ledgersync-demo-") as temporary:
        root = Path(temporary)
        (root / "server").mkdir()
        say("step", "Starting `ledgersync serve` on a free loopback port, temporary database")
        server = LocalServer(root / "server")
        await asyncio.to_thread(server.start)
        wallets: list[Wallet] = []
        watchers: list[_Watcher] = []
        try:
            say("info", f"server: {server.url} (Key Ring and Cloud Sync APIs)")
            await _tour(say, server.url, root / "home", wallets, watchers)
        finally:
            for watcher in watchers:
                await watcher.close()
            for wallet in wallets:
                await wallet.aclose()
            await asyncio.to_thread(server.stop)
    duration = time.monotonic() - started
    say("step", f"Done in {duration:.1f} s; the server and every file were removed")
    return duration


async def _tour(
    say: Callable[[str, str], None],
    url: str,
    home: Path,
    wallets: list[Wallet],
    watchers: list[_Watcher],
) -> None:
    device = SoftwareDevice.from_mnemonic(generate_mnemonic(), approver=approve_all)
    say("info", "a software device from a fresh 24-word recovery phrase (kept in memory)")
    store = InstanceStore(home)
    for name in ("laptop", "phone", "tablet"):
        store.create(name, url)
        wallets.append(Wallet(store, name))
    laptop, phone, tablet = wallets
    say("info", "three instances: laptop, phone, tablet")

    say("step", "laptop: two accounts, then `activate` with the device (creates the trustchain)")
    await actions.add_account(laptop, ETH, name="Ethereum", sync=False)
    await actions.add_account(laptop, BTC, name="Bitcoin", sync=False)
    created = await laptop.activate(device)
    say("info", f"{created.outcome} trustchain {created.trustchain_id[:18]}…")
    say("info", f"sent {len(created.sync.sent)} entries; document version {created.sync.version}")

    say("step", "phone: `activate` with the same device (joins the trustchain)")
    joined = await phone.activate(device)
    say("info", f"{joined.outcome}; accounts on the phone: {_names(phone.record().local)}")

    say("step", "tablet: QR pairing with the laptop (the laptop shows the code, the tablet scans)")
    shown: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    digits: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_digits(value: str) -> None:
        say("info", f"laptop shows the digits {value}; the tablet's user types them")
        digits.set_result(value)

    host = asyncio.create_task(
        actions.pair_host(laptop, on_url=shown.set_result, on_digits=on_digits)
    )
    pairing_url = await shown
    say("info", f"pairing URL (the QR code): {pairing_url[:60]}…")

    async def type_digits(request: DigitsRequest) -> str:
        return await digits

    paired = await actions.pair_join(tablet, pairing_url, get_digits=type_digits)
    await host
    say("info", f"tablet {paired.outcome}; accounts on the tablet: {_names(tablet.record().local)}")
    members = [member.name for member in await laptop.members()]
    say("info", f"members: {', '.join(members)}")

    say("step", "phone and tablet sync live (`ledgersync sync --watch`)")
    watchers.extend([_Watcher(phone), _Watcher(tablet)])
    for watcher in watchers:
        await watcher.next_report(lambda report: True)
        await watcher.subscribed()
    say("info", "both watchers synced and subscribed to the server's notifications")

    say("step", "laptop: rename the Ethereum account and label a transaction")
    stamp = actions.now_ms()

    def change(document: Document) -> Document:
        renamed = edits.rename_account(document, ETH, "Savings")
        return edits.set_label(renamed, "tx", TXID, "Rent, December", now_ms=stamp)

    edited = time.monotonic()
    outcome = await actions.apply(laptop, change)
    sent = len(outcome.report.sent) if outcome.report else 0
    say("info", f"laptop synced: {sent} entries sent, in {time.monotonic() - edited:.3f} s")

    def has_both(report: SyncReport) -> bool:
        modules = {change.module for change in report.received}
        return {"accountNames", "ledgersync.labels"} <= modules

    for watcher in watchers:
        await watcher.next_report(has_both)
        local = watcher.wallet.record().local
        label = edits.label_records(local)[0]["label"]
        say(
            "info",
            f"{watcher.wallet.name}: 'Savings' and label {label!r} arrived "
            f"{time.monotonic() - edited:.3f} s after the edit (accounts: {_names(local)})",
        )

    say("step", "laptop: remove the tablet with the device (key rotation)")
    member, path = await laptop.remove_member(
        device, "tablet", on_progress=lambda step: say("info", f"laptop: {step}")
    )
    rotated = time.monotonic()
    say("info", f"removed {member.name!r}; the data is now encrypted under {path}")
    followed = await watchers[0].next_report(lambda report: report.rotated)
    say(
        "info",
        f"phone followed the rotation after {time.monotonic() - rotated:.3f} s "
        f"(version {followed.version}, accounts: {_names(phone.record().local)})",
    )
    ended = await watchers[1].ended()
    if not isinstance(ended, InstancePurged):
        raise DemoFailed(f"the tablet was not ejected ({ended!r})")
    record = tablet.record()
    left = "none" if record.credentials is None and not record.local else "some"
    say(
        "info",
        f"tablet ejected after {time.monotonic() - rotated:.3f} s: its watcher found it removed "
        f"and purged it (keys and synced data left: {left})",
    )
    members = [member.name for member in await phone.members()]
    say("info", f"members now: {', '.join(members)}")

    say("step", "phone: export CSV (`ledgersync export --format csv`)")
    say("text", actions.export(phone, "csv"))
    say("step", "phone: export BIP-329 labels (`ledgersync labels export`)")
    say("text", actions.export(phone, "bip329"))

    say("step", "laptop: `deactivate` (deletes the cloud data and the trustchain)")
    off = time.monotonic()
    await laptop.deactivate()
    say("info", "laptop: Ledger Sync is off; its keys and data were deleted here")
    ended = await watchers[0].ended()
    if not isinstance(ended, InstancePurged):
        raise DemoFailed(f"the phone did not see the deactivation ({ended!r})")
    say(
        "info",
        f"phone saw the trustchain deleted after {time.monotonic() - off:.3f} s and purged "
        "itself: every instance is off",
    )


__all__ = ["DemoEvent", "DemoFailed", "run_demo"]
