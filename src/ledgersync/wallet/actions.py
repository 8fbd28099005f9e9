"""What a person does with an instance, one function per action, for front ends.

The command line (:mod:`ledgersync.cli`) is a thin shell over these: it parses arguments,
calls one of them, and renders what it returns. Everything that decides something lives here:

* reads of the local data (refused, with the reason, on an instance that was purged);
* local edits that are then synced once (:func:`apply`): offline, or before the instance is
  active, the change is kept for the next sync and the outcome says why
  (:attr:`EditOutcome.deferred`);
* exports (JSON, CSV, BIP-329), with ``confirmed_only`` for every format, written atomically;
* instances: summaries for a listing, removal (refused for an active instance unless forced);
* pairing with a timeout on the wait for the other side, and plain-words errors;
* the live watch loop ended cleanly by SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..device.privatefiles import write_private_file
from ..protocol.qr import QRCodeError, parse_pairing_url
from ..sdk import DigitsRequest
from ..sdk import errors as sdk_errors
from . import edits
from .accounts import account_descriptor
from .document import LABELS_KEY, Document, same
from .errors import (
    InstanceBusy,
    InstanceCorrupted,
    InstanceError,
    InvalidEdit,
    NotActivated,
    ServerUnreachable,
    SyncFailed,
    WalletError,
)
from .exports import accounts_with_names, to_bip329, to_csv, to_json
from .instances import InstanceRecord, InstanceStore
from .labels import read_bip329
from .session import ActivationReport, SyncReport, Wallet

EXPORT_FORMATS = ("json", "csv", "bip329")
#: How long ``pair`` waits for the other side to connect (the relay closes idle rooms too).
PAIRING_TIMEOUT = 300.0
#: Signals that end a watch loop cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def now_ms() -> int:
    return int(time.time() * 1000)


# --- reads ------------------------------------------------------------------------------------


def usable(record: InstanceRecord) -> InstanceRecord:
    """``record``, unless it was purged (removed, deleted, deactivated): then say so."""
    if record.purged is not None and not record.active:
        hint = (
            "; activate it again with `ledgersync activate --device …` or pair it"
            if record.purged.reason == "deactivated"
            else ""
        )
        raise NotActivated(f"instance {record.name!r} is not active: {record.purged.message}{hint}")
    return record


def require_active(wallet: Wallet) -> InstanceRecord:
    """The instance's record, if it belongs to a trustchain; else say what to do."""
    record = usable(wallet.record())
    if not record.active:
        raise NotActivated(
            f"instance {record.name!r} is not active yet: run `ledgersync activate --device …` "
            "or pair it with `ledgersync pair`"
        )
    return record


async def refresh(wallet: Wallet) -> WalletError | None:
    """Sync once before a read, so that it shows what the other instances synced and notices
    that this instance was removed (:class:`~.errors.InstancePurged` then propagates). When
    the sync cannot run (offline, busy, refused), the read goes on with the data as of the
    last sync and the reason is returned."""
    record = usable(wallet.record())
    if not record.active:
        return None
    try:
        async with wallet:
            await wallet.sync()
    except (ServerUnreachable, SyncFailed, InstanceBusy) as exc:
        return exc
    return None


def local_data(wallet: Wallet) -> Document:
    """This instance's data as of its last sync (plus its pending local changes)."""
    return usable(wallet.record()).local


def accounts(wallet: Wallet) -> list[dict[str, Any]]:
    """The accounts, each with its custom ``name`` (or None)."""
    return accounts_with_names(local_data(wallet))


def labels(wallet: Wallet) -> list[dict[str, Any]]:
    """The BIP-329 label records."""
    return edits.label_records(local_data(wallet))


def confirmed_view(document: Document) -> Document:
    """``document`` without the labels of transactions that have no block ``height``."""
    entries = document.get(LABELS_KEY)
    if not isinstance(entries, list) or not edits.label_records(document):
        return document
    kept = [
        entry
        for entry in entries
        if not (entry["record"]["type"] == "tx" and entry["record"].get("height") is None)
    ]
    return {**document, LABELS_KEY: kept}


def export(wallet: Wallet, export_format: str, *, confirmed_only: bool = False) -> str:
    """The instance's data as ``json``, ``csv`` or ``bip329`` text (see :mod:`.exports`)."""
    if export_format not in EXPORT_FORMATS:
        raise InvalidEdit(
            f"unknown export format {export_format!r}: use one of {', '.join(EXPORT_FORMATS)}"
        )
    document = local_data(wallet)
    if confirmed_only:
        document = confirmed_view(document)
    if export_format == "csv":
        return to_csv(document)
    if export_format == "bip329":
        return to_bip329(document)
    return json.dumps(to_json(document), indent=2, ensure_ascii=False) + "\n"


def write_file(path: Path, text: str) -> None:
    """Write an export atomically (never half a file), readable by its owner only."""
    try:
        write_private_file(path, text.encode("utf-8"))
    except OSError as exc:
        raise WalletError(f"cannot write {path}: {exc.strerror or exc}") from exc


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WalletError(f"cannot read {path}: {exc.strerror or exc}") from exc


# --- edits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EditOutcome:
    """What a local edit, and the sync that followed it, did."""

    #: The edit changed the local data (setting a name to the one it has changes nothing).
    changed: bool
    #: The sync round that followed, when one ran.
    report: SyncReport | None = None
    #: Why the change was kept for the next sync instead (offline, not active), or None.
    deferred: WalletError | None = None


async def apply(
    wallet: Wallet, change: Callable[[Document], Document], *, sync: bool = True
) -> EditOutcome:
    """Apply ``change`` to the local data, then sync once (unless ``sync`` is false).

    Offline (:class:`~.errors.ServerUnreachable`) or before the instance is active, the change
    stays here for the next sync and :attr:`EditOutcome.deferred` says why. Any other failure
    of the sync is raised, saying that the change was kept.
    """
    before = usable(wallet.record())
    record = await wallet.edit(change)
    changed = not same(before.local, record.local)
    if not sync:
        return EditOutcome(changed)
    if not record.active:
        return EditOutcome(
            changed,
            deferred=NotActivated(
                f"instance {record.name!r} is not active yet; the change will be synced once "
                "it is activated (`ledgersync activate`) or paired (`ledgersync pair`)"
            ),
        )
    try:
        return EditOutcome(changed, report=await wallet.sync())
    except ServerUnreachable as exc:
        return EditOutcome(
            changed,
            deferred=ServerUnreachable(f"{exc}; the change is kept here for the next sync"),
        )
    except SyncFailed as exc:
        raise SyncFailed(f"{exc}; the change is kept here for the next sync") from exc


async def add_account(
    wallet: Wallet,
    account_id: str,
    *,
    currency_id: str | None = None,
    fresh_address: str | None = None,
    seed_identifier: str | None = None,
    derivation_mode: str | None = None,
    index: int | None = None,
    name: str | None = None,
    sync: bool = True,
) -> EditOutcome:
    """Add an account; fields not given come from the account id (see :mod:`.accounts`)."""
    descriptor = account_descriptor(
        account_id,
        currency_id=currency_id,
        fresh_address=fresh_address,
        seed_identifier=seed_identifier,
        derivation_mode=derivation_mode,
        index=index,
    )
    return await apply(wallet, lambda doc: edits.add_account(doc, descriptor, name), sync=sync)


async def rename_account(
    wallet: Wallet, account_id: str, name: str, *, sync: bool = True
) -> EditOutcome:
    return await apply(wallet, lambda doc: edits.rename_account(doc, account_id, name), sync=sync)


async def remove_account(wallet: Wallet, account_id: str, *, sync: bool = True) -> EditOutcome:
    return await apply(wallet, lambda doc: edits.remove_account(doc, account_id), sync=sync)


async def set_label(
    wallet: Wallet,
    label_type: str,
    ref: str,
    label: str,
    *,
    origin: str | None = None,
    spendable: bool | None = None,
    sync: bool = True,
) -> EditOutcome:
    edits.label_key(label_type, ref)  # bad input fails before the instance is touched
    stamp = now_ms()
    return await apply(
        wallet,
        lambda doc: edits.set_label(
            doc, label_type, ref, label, now_ms=stamp, origin=origin, spendable=spendable
        ),
        sync=sync,
    )


async def remove_label(
    wallet: Wallet, label_type: str, ref: str, *, sync: bool = True
) -> EditOutcome:
    edits.label_key(label_type, ref)
    return await apply(wallet, lambda doc: edits.remove_label(doc, label_type, ref), sync=sync)


async def import_labels(
    wallet: Wallet, content: bytes, *, sync: bool = True
) -> tuple[int, EditOutcome]:
    """Import a BIP-329 file (all or nothing); returns how many records it had."""
    records = read_bip329(content)
    stamp = now_ms()
    outcome = await apply(
        wallet, lambda doc: edits.import_labels(doc, records, now_ms=stamp), sync=sync
    )
    return len(records), outcome


# --- instances --------------------------------------------------------------------------------


def instance_summary(record: InstanceRecord) -> dict[str, Any]:
    """One instance as ``instance list --json`` shows it."""
    return {
        "name": record.name,
        "server": record.server,
        "memberName": record.member_name,
        "active": record.active,
        "trustchainId": record.trustchain.root_id if record.trustchain else None,
        "version": record.version,
        "lastSync": record.last_sync,
        "purged": (
            {"reason": record.purged.reason, "message": record.purged.message}
            if record.purged
            else None
        ),
        "error": None,
    }


def instance_summaries(store: InstanceStore) -> list[dict[str, Any]]:
    """Every instance; a damaged one is listed with its ``error`` instead of failing all."""
    summaries: list[dict[str, Any]] = []
    for name in store.names():
        try:
            summaries.append(instance_summary(store.load(name)))
        except InstanceError as exc:
            summaries.append(
                {
                    "name": name,
                    "server": None,
                    "memberName": None,
                    "active": False,
                    "trustchainId": None,
                    "version": None,
                    "lastSync": None,
                    "purged": None,
                    "error": str(exc),
                }
            )
    return summaries


def remove_instance(store: InstanceStore, name: str, *, force: bool = False) -> bool:
    """Delete the instance here (nothing on the server). Returns whether it was active.

    An active instance is refused unless ``force``: its member stays in the trustchain (other
    instances can remove it), and its data stays with the other instances."""
    name = store.select(name)
    try:
        active = store.load(name).active
    except InstanceCorrupted:
        if not force:
            raise
        active = False
    if active and not force:
        raise InstanceError(
            f"instance {name!r} is active: `ledgersync deactivate` turns Ledger Sync off for "
            "every instance, or remove this one from another instance with `ledgersync "
            "members remove`; --force deletes it here only (it stays a member of the "
            "trustchain)"
        )
    store.remove(name)
    return active


# --- pairing ----------------------------------------------------------------------------------


def check_pairing_url(url: str) -> str:
    """``url`` if it is a Ledger Sync pairing URL (as a QR code holds it)."""
    url = url.strip()
    try:
        parse_pairing_url(url)
    except QRCodeError as exc:
        raise InvalidEdit(
            f"this is not a Ledger Sync pairing URL ({exc}); copy the whole "
            "`Pairing URL:` line that `ledgersync pair host` prints"
        ) from exc
    if urlsplit(url).scheme not in ("ws", "wss"):
        raise InvalidEdit("a pairing URL starts with ws:// or wss://")
    return url


def _same_server(url: str, server: str) -> bool:
    pairing, ours = urlsplit(url), urlsplit(server)
    scheme = {"http": "ws", "https": "wss"}.get(ours.scheme, ours.scheme)
    return (
        pairing.scheme == scheme
        and pairing.netloc.lower() == ours.netloc.lower()
        and pairing.path.rstrip("/") == f"{ours.path.rstrip('/')}/v1/qr"
    )


def _pairing_error(exc: SyncFailed) -> WalletError:
    cause = exc.__cause__
    if isinstance(cause, sdk_errors.QRCodeWSClosed):
        return SyncFailed(
            "the pairing connection closed before the pairing finished (the other side left "
            "or waited too long); nothing was changed, start the pairing again"
        )
    if isinstance(cause, sdk_errors.NoTrustchainInitialized):
        return SyncFailed(
            "neither instance belongs to a trustchain yet: activate one of them first with "
            "`ledgersync activate --device …`, then pair the other"
        )
    if isinstance(cause, sdk_errors.TrustchainAlreadyInitialized):
        return SyncFailed(
            "both instances already belong to a trustchain; pairing adds an instance that has "
            "none (deactivate or remove one first)"
        )
    if isinstance(cause, sdk_errors.ScannedInvalidQrCode | sdk_errors.ScannedOldImportQrCode):
        return SyncFailed(f"this is not a Ledger Sync pairing URL ({cause})")
    if isinstance(cause, sdk_errors.QRCodeProtocolError):
        return SyncFailed(f"the other side broke the pairing protocol ({cause}); nothing changed")
    return exc


async def _pair(
    job: Awaitable[ActivationReport], started: asyncio.Event, timeout: float, waiting_for: str
) -> ActivationReport:
    """Run a pairing; it must reach ``started`` (the handshake) within ``timeout`` seconds."""
    task = asyncio.ensure_future(job)
    waiter = asyncio.ensure_future(started.wait())
    try:
        await asyncio.wait([task, waiter], timeout=timeout, return_when="FIRST_COMPLETED")
        if not task.done() and not started.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WalletError):
                await task
            raise SyncFailed(
                f"{waiting_for} within {timeout:g} s; nothing was changed, start the pairing again"
            )
        try:
            return await task
        except SyncFailed as exc:
            better = _pairing_error(exc)
            if better is exc:
                raise
            raise better from exc
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()


async def pair_host(
    wallet: Wallet,
    *,
    on_url: Callable[[str], Any],
    on_digits: Callable[[str], Any],
    timeout: float = PAIRING_TIMEOUT,
) -> ActivationReport:
    """Show a pairing URL and the digits; whichever side has no trustchain joins the other's.
    ``timeout``: how long to wait for another instance to scan the URL."""
    started = asyncio.Event()

    def digits(value: str) -> Any:
        started.set()
        return on_digits(value)

    try:
        return await _pair(
            wallet.pair_host(on_url=on_url, on_digits=digits),
            started,
            timeout,
            "no instance scanned the pairing URL",
        )
    except SyncFailed as exc:
        if isinstance(exc.__cause__, sdk_errors.InvalidDigitsError):
            raise SyncFailed(
                "the other instance typed other digits than the ones shown here; nothing was "
                "changed, start the pairing again"
            ) from exc
        raise


async def pair_join(
    wallet: Wallet,
    url: str,
    *,
    get_digits: Callable[[DigitsRequest], str | Awaitable[str]],
    timeout: float = PAIRING_TIMEOUT,
) -> ActivationReport:
    """Pair with the URL another instance shows; ``get_digits`` returns the digits it shows."""
    url = check_pairing_url(url)
    record = wallet.record()
    if not _same_server(url, record.server):
        raise InvalidEdit(
            f"this pairing URL is for another server than {record.server}, the server of "
            f"instance {record.name!r}; pair instances of the same server"
        )
    started = asyncio.Event()

    async def digits(request: DigitsRequest) -> str:
        started.set()
        answer = get_digits(request)
        text = await answer if not isinstance(answer, str) else answer
        return text.strip()

    return await _pair(
        wallet.pair_join(url, get_digits=digits),
        started,
        timeout,
        "the other instance did not answer",
    )


# --- live -------------------------------------------------------------------------------------


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT or SIGTERM while inside (in the running event loop)."""
    loop = asyncio.get_running_loop()
    installed = []
    for number in STOP_SIGNALS:
        try:
            loop.add_signal_handler(number, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - platform
            continue
        installed.append(number)
    try:
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)


async def watch_until_signalled(
    wallet: Wallet,
    *,
    on_report: Callable[[SyncReport], None],
    on_error: Callable[[WalletError], None],
    poll_interval: float,
    on_listening: Callable[[], None] = lambda: None,
) -> None:
    """:meth:`Wallet.watch` until SIGINT or SIGTERM; a round under way is finished first, so
    nothing is left half-written. :class:`~.errors.InstancePurged` and
    :class:`~.errors.NotActivated` end it (raised). ``on_listening``: each time the server's
    notifications are subscribed to."""
    usable(wallet.record())
    stop = asyncio.Event()
    with stop_on_signals(stop):
        await wallet.watch(
            stop,
            on_report=on_report,
            on_error=on_error,
            poll_interval=poll_interval,
            on_listening=on_listening,
        )


__all__ = [
    "EXPORT_FORMATS",
    "PAIRING_TIMEOUT",
    "EditOutcome",
    "accounts",
    "add_account",
    "apply",
    "check_pairing_url",
    "confirmed_view",
    "export",
    "import_labels",
    "instance_summaries",
    "instance_summary",
    "labels",
    "local_data",
    "pair_host",
    "pair_join",
    "read_file",
    "remove_account",
    "remove_instance",
    "remove_label",
    "rename_account",
    "require_active",
    "set_label",
    "stop_on_signals",
    "usable",
    "watch_until_signalled",
    "write_file",
]
