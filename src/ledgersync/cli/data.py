"""``ledgersync accounts …``, ``labels …`` and ``export``: the synced data.

Reads show this instance's data as of its last sync (they do not contact the server; run
``ledgersync sync`` first, or keep ``ledgersync sync --watch`` running). Edits are applied
here, then synced once (``--no-sync``: not now); offline, the change is kept for the next sync.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..wallet import LABEL_TYPES, Wallet, actions
from ..wallet.actions import EditOutcome
from .common import (
    WalletCommand,
    WalletGroup,
    echo_json,
    home_option,
    instance_option,
    json_option,
    note,
    open_wallet,
    run,
    table,
    wallet_command,
)
from .render import echo_outcome

no_sync_option = click.option(
    "--no-sync",
    "no_sync",
    is_flag=True,
    help="Change it here only; the next `ledgersync sync` sends it.",
)
offline_option = click.option(
    "--offline",
    is_flag=True,
    help="Show the data as of the last sync, without syncing first.",
)


def fresh_wallet(home: Path, instance: str | None, offline: bool) -> Wallet:
    """The instance, synced once first unless ``offline`` (a removal is noticed here)."""
    wallet = open_wallet(home, instance)
    if not offline:
        problem = run(actions.refresh(wallet))
        if problem is not None:
            click.echo(f"Not synced: {problem}; showing the data as of the last sync", err=True)
    return wallet


# --- accounts -----------------------------------------------------------------------------


@click.group(cls=WalletGroup)
def accounts() -> None:
    """The accounts synced between instances, and their names.

    \b
    Examples:
      ledgersync accounts list
      ledgersync accounts add 'js:2:ethereum:0x71C7656EC7ab88b098defB751B7401B5f6d8976F:' \\
          --name Main
      ledgersync accounts rename 'js:2:ethereum:0x71C7…:' Savings
    """


@accounts.command("list")
@json_option
@offline_option
@instance_option
@home_option
@wallet_command
def accounts_list(as_json: bool, offline: bool, instance: str | None, home: Path) -> None:
    """List the accounts (synced first, unless --offline).

    \b
    Example:
      ledgersync accounts list --json
    """
    found = actions.accounts(fresh_wallet(home, instance, offline))
    if as_json:
        echo_json(found)
        return
    table(
        ["Name", "Currency", "Index", "Account id", "Fresh address"],
        [[a["name"] or "", a["currencyId"], a["index"], a["id"], a["freshAddress"]] for a in found],
        empty="No account yet: `ledgersync accounts add ID` adds one.",
    )


@accounts.command("add")
@click.argument("account_id", metavar="ID")
@click.option("--currency", metavar="C", help="Currency id (ethereum, bitcoin…) [from ID].")
@click.option("--address", metavar="A", help="Fresh address [the xpub or address of ID].")
@click.option("--seed-identifier", metavar="S", help="Seed identifier [the xpub or address of ID].")
@click.option("--derivation-mode", metavar="M", help="Derivation mode [from ID].")
@click.option("--index", type=click.IntRange(min=0), metavar="N", help="Account index [0].")
@click.option("--name", metavar="TEXT", help="A custom name for the account.")
@no_sync_option
@instance_option
@home_option
@wallet_command
def accounts_add(
    account_id: str,
    currency: str | None,
    address: str | None,
    seed_identifier: str | None,
    derivation_mode: str | None,
    index: int | None,
    name: str | None,
    no_sync: bool,
    instance: str | None,
    home: Path,
) -> None:
    """Add account ID. Ledger Live's ids (type:version:currency:xpubOrAddress:mode) give
    the currency, the address, the seed identifier and the derivation mode; other ids need
    at least --currency and --address.

    \b
    Examples:
      ledgersync accounts add 'js:2:ethereum:0x71C7656EC7ab88b098defB751B7401B5f6d8976F:' \\
          --name Main
      ledgersync accounts add my-btc --currency bitcoin --address bc1q… --index 1
    """
    wallet = open_wallet(home, instance)

    async def go() -> EditOutcome:
        async with wallet:
            return await actions.add_account(
                wallet,
                account_id,
                currency_id=currency,
                fresh_address=address,
                seed_identifier=seed_identifier,
                derivation_mode=derivation_mode,
                index=index,
                name=name,
                sync=not no_sync,
            )

    echo_outcome(f"Added account {account_id}.", run(go()))


@accounts.command("rename")
@click.argument("account_id", metavar="ID")
@click.argument("name")
@no_sync_option
@instance_option
@home_option
@wallet_command
def accounts_rename(
    account_id: str, name: str, no_sync: bool, instance: str | None, home: Path
) -> None:
    """Give account ID the name NAME (every instance shows it).

    \b
    Example:
      ledgersync accounts rename 'js:2:ethereum:0x71C7656EC7ab88b098defB751B7401B5f6d8976F:' Savings
    """
    wallet = open_wallet(home, instance)

    async def go() -> EditOutcome:
        async with wallet:
            return await actions.rename_account(wallet, account_id, name, sync=not no_sync)

    echo_outcome(f"Renamed account {account_id} to {name!r}.", run(go()))


@accounts.command("remove")
@click.argument("account_id", metavar="ID")
@no_sync_option
@instance_option
@home_option
@wallet_command
def accounts_remove(account_id: str, no_sync: bool, instance: str | None, home: Path) -> None:
    """Remove account ID (and its name) from every instance.

    \b
    Example:
      ledgersync accounts remove 'js:2:ethereum:0x71C7656EC7ab88b098defB751B7401B5f6d8976F:'
    """
    wallet = open_wallet(home, instance)

    async def go() -> EditOutcome:
        async with wallet:
            return await actions.remove_account(wallet, account_id, sync=not no_sync)

    echo_outcome(f"Removed account {account_id}.", run(go()))


# --- labels -------------------------------------------------------------------------------


@click.group(cls=WalletGroup)
def labels() -> None:
    """Wallet labels (BIP-329: transactions, addresses, outputs, xpubs…), synced.

    \b
    Examples:
      ledgersync labels set tx f4184fc5…e9e16 "Rent, December"
      ledgersync labels import labels.jsonl
      ledgersync labels export -o labels.jsonl
    """


@labels.command("list")
@json_option
@offline_option
@instance_option
@home_option
@wallet_command
def labels_list(as_json: bool, offline: bool, instance: str | None, home: Path) -> None:
    """List the labels (synced first, unless --offline); --json prints the BIP-329 records.

    \b
    Example:
      ledgersync labels list --json
    """
    records = actions.labels(fresh_wallet(home, instance, offline))
    if as_json:
        echo_json(records)
        return

    def spendable(value: object) -> str:
        return "" if value is None else "true" if value else "false"

    table(
        ["Type", "Reference", "Label", "Origin", "Spendable"],
        [
            [
                r["type"],
                r["ref"],
                r.get("label", ""),
                r.get("origin", ""),
                spendable(r.get("spendable")),
            ]
            for r in records
        ],
        empty="No label yet: `ledgersync labels set TYPE REF LABEL` sets one.",
    )


@labels.command("set")
@click.argument("label_type", metavar="TYPE", type=click.Choice(LABEL_TYPES))
@click.argument("ref", metavar="REF")
@click.argument("label", metavar="LABEL")
@click.option("--origin", metavar="O", help="BIP-329 origin (an abbreviated output descriptor).")
@click.option(
    "--spendable",
    type=click.BOOL,
    metavar="true|false",
    help="Output labels: whether the output may be spent.",
)
@no_sync_option
@instance_option
@home_option
@wallet_command
def labels_set(
    label_type: str,
    ref: str,
    label: str,
    origin: str | None,
    spendable: bool | None,
    no_sync: bool,
    instance: str | None,
    home: Path,
) -> None:
    """Set the label of REF, a TYPE (tx, addr, pubkey, input, output, xpub) reference.

    REF is a txid (tx), an address (addr), a public key (pubkey), txid:index (input,
    output) or an xpub. Other fields of an existing record are kept.

    \b
    Examples:
      ledgersync labels set tx f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16 Rent
      ledgersync labels set output f4184fc5…e9e16:0 "Cold storage" --spendable false
    """
    wallet = open_wallet(home, instance)

    async def go() -> EditOutcome:
        async with wallet:
            return await actions.set_label(
                wallet, label_type, ref, label, origin=origin, spendable=spendable, sync=not no_sync
            )

    echo_outcome(f"Labelled {label_type} {ref} {label!r}.", run(go()))


@labels.command("remove")
@click.argument("label_type", metavar="TYPE", type=click.Choice(LABEL_TYPES))
@click.argument("ref", metavar="REF")
@no_sync_option
@instance_option
@home_option
@wallet_command
def labels_remove(
    label_type: str, ref: str, no_sync: bool, instance: str | None, home: Path
) -> None:
    """Remove the label of TYPE REF.

    \b
    Example:
      ledgersync labels remove addr bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh
    """
    wallet = open_wallet(home, instance)

    async def go() -> EditOutcome:
        async with wallet:
            return await actions.remove_label(wallet, label_type, ref, sync=not no_sync)

    echo_outcome(f"Removed the label of {label_type} {ref}.", run(go()))


@labels.command("import")
@click.argument("source", metavar="FILE|-")
@no_sync_option
@instance_option
@home_option
@wallet_command
def labels_import(source: str, no_sync: bool, instance: str | None, home: Path) -> None:
    """Import a BIP-329 file (JSON Lines; - for standard input): all of it or nothing.

    Records replace those with the same type and reference; records of types BIP-329 does
    not define are skipped, as it asks.

    \b
    Examples:
      ledgersync labels import sparrow-labels.jsonl
      cat labels.jsonl | ledgersync labels import -
    """
    wallet = open_wallet(home, instance)
    content = sys.stdin.buffer.read() if source == "-" else actions.read_file(Path(source))

    async def go() -> tuple[int, EditOutcome]:
        async with wallet:
            return await actions.import_labels(wallet, content, sync=not no_sync)

    count, outcome = run(go())
    echo_outcome(f"Imported {count} label{'s' if count != 1 else ''}.", outcome)


def _write(text: str, output: Path | None) -> None:
    if output is None or str(output) == "-":
        click.echo(text, nl=False)
        return
    actions.write_file(output, text)
    note(f"Wrote {output} ({len(text.encode())} bytes).")


output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write to FILE (atomically, mode 0600) instead of standard output.",
)


@labels.command("export")
@output_option
@offline_option
@instance_option
@home_option
@wallet_command
def labels_export(output: Path | None, offline: bool, instance: str | None, home: Path) -> None:
    """Export the labels as a BIP-329 file (JSON Lines).

    \b
    Example:
      ledgersync labels export -o labels.jsonl
    """
    _write(actions.export(fresh_wallet(home, instance, offline), "bip329"), output)


# --- export -------------------------------------------------------------------------------


@click.command(cls=WalletCommand)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(actions.EXPORT_FORMATS),
    default="json",
    show_default=True,
    help="json: everything; csv: accounts and labels, one per row; bip329: the labels.",
)
@output_option
@click.option(
    "--confirmed-only",
    is_flag=True,
    help="Leave out the labels of transactions without a block height.",
)
@offline_option
@instance_option
@home_option
@wallet_command
def export(
    export_format: str,
    output: Path | None,
    confirmed_only: bool,
    offline: bool,
    instance: str | None,
    home: Path,
) -> None:
    """Export the instance's data (synced first, unless --offline) as JSON, CSV or BIP-329.

    \b
    Examples:
      ledgersync export --format csv -o wallet.csv
      ledgersync export --format bip329 --confirmed-only > labels.jsonl
    """
    wallet = fresh_wallet(home, instance, offline)
    text = actions.export(wallet, export_format, confirmed_only=confirmed_only)
    _write(text, output)
