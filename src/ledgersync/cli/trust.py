"""``ledgersync activate``, ``pair host|join``, ``members [remove]``, ``deactivate``:
joining, growing, shrinking and ending an instance's trustchain."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..device import DeviceSpec
from ..device.spec import SoftwareSpec
from ..sdk import DigitsRequest
from ..wallet import ActivationReport, Member, actions
from ..wallet.errors import InvalidEdit, WalletError
from .common import (
    WalletCommand,
    WalletGroup,
    clean,
    echo_json,
    home_option,
    inherited,
    instance_option,
    json_option,
    note,
    open_wallet,
    progress,
    read_line,
    run,
    steps,
    table,
    wallet_command,
)
from .device import device_option, open_cli_device
from .render import echo_report


def _echo_activation(report: ActivationReport, name: str) -> None:
    trustchain = report.trustchain_id
    click.echo(
        {
            "created": f"Created trustchain {trustchain}; {name!r} is its first member.",
            "joined": f"Joined trustchain {trustchain}.",
            "restored": f"{name!r} was already a member of trustchain {trustchain}; restored.",
            "added": f"Added the other instance to trustchain {trustchain}.",
        }.get(report.outcome, f"{report.outcome}: trustchain {trustchain}.")
    )
    echo_report(report.sync)


@click.command(cls=WalletCommand)
@device_option
@instance_option
@home_option
@wallet_command
def activate(device_spec: DeviceSpec, assume_yes: bool, instance: str | None, home: Path) -> None:
    """Turn Ledger Sync on with your device: create the trustchain, or join it.

    The Ledger Live "use your Ledger" path: the first instance activated with a device
    creates the trustchain; the next ones join it (the device adds them). Their data is then
    merged with what the others synced.

    \b
    Example:
      ledgersync device new alice
      ledgersync activate --device software:alice --yes --instance laptop
    """
    wallet = open_wallet(home, instance)

    async def go() -> ActivationReport:
        async with wallet:
            note(f"Opening the device {device_spec}…")
            device = await open_cli_device(device_spec, home=home, assume_yes=assume_yes)
            async with device:
                note(f"Logging in to {wallet.record().server} with the device…")
                return await wallet.activate(device)

    _echo_activation(run(go()), wallet.name)


# --- pairing ------------------------------------------------------------------------------


@click.group(cls=WalletGroup)
def pair() -> None:
    """Pair two instances by QR code: whichever has no trustchain joins the other's.

    \b
    Example (the laptop is active, the phone joins):
      laptop$ ledgersync pair host --instance laptop
      phone$  ledgersync pair join 'ws://…/v1/qr?host=…' --instance phone
    """


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=actions.PAIRING_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the other instance.",
)


@pair.command("host")
@click.option(
    "--qr/--no-qr",
    default=None,
    help="Draw the QR code in the terminal [when the output is a terminal].",
)
@timeout_option
@instance_option
@home_option
@wallet_command
def host(qr: bool | None, timeout: float, instance: str | None, home: Path) -> None:
    """Show a pairing URL (and its QR code), then the digits to type on the other side.

    Prints `Pairing URL: <url>` and, once the other instance has scanned it, `Digits: 123`,
    each on its own line as soon as it exists; exits once the pairing is done. Ledger Live
    scans the QR code; another ledgersync instance runs `ledgersync pair join URL`.

    \b
    Example:
      ledgersync pair host --instance laptop
    """
    wallet = open_wallet(home, instance)
    draw = qr if qr is not None else sys.stdout.isatty()

    def on_url(url: str) -> None:
        click.echo(f"Pairing URL: {url}")
        if draw:
            import segno

            segno.make_qr(url).terminal(out=sys.stdout, compact=True, border=2)
            sys.stdout.flush()
        note(
            "Scan it with the other instance (Ledger Live: Ledger Sync, sync with another "
            "Ledger Live app), or there run `ledgersync pair join URL`. Waiting…"
        )

    def on_digits(digits: str) -> None:
        click.echo(f"Digits: {digits}")
        note("Type these digits on the other instance.")

    async def go() -> ActivationReport:
        async with wallet:
            return await actions.pair_host(
                wallet, on_url=on_url, on_digits=on_digits, timeout=timeout
            )

    _echo_activation(run(go()), wallet.name)


def _pairing_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return actions.check_pairing_url(value)
    except InvalidEdit as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@pair.command("join")
@click.argument("url", callback=_pairing_url)
@click.option(
    "--digits",
    metavar="DIGITS",
    help="The digits the other instance shows (else they are read from standard input).",
)
@timeout_option
@instance_option
@home_option
@wallet_command
def join(url: str, digits: str | None, timeout: float, instance: str | None, home: Path) -> None:
    """Pair with the URL another instance shows (as scanned), typing the digits it shows.

    \b
    Examples:
      ledgersync pair join 'ws://localhost:8080/v1/qr?host=02…' --instance phone
      echo 123 | ledgersync pair join "$URL" --instance phone
    """
    wallet = open_wallet(home, instance)

    async def get_digits(request: DigitsRequest) -> str:
        if digits is not None:
            return digits
        line = await read_line(f"Type the {request.digits} digits shown on the other instance: ")
        if line is None:
            raise WalletError(
                "no digits on standard input; type them, or pass --digits; nothing was changed"
            )
        return line

    async def go() -> ActivationReport:
        async with wallet:
            note("Connecting to the other instance…")
            return await actions.pair_join(wallet, url, get_digits=get_digits, timeout=timeout)

    _echo_activation(run(go()), wallet.name)


# --- members ------------------------------------------------------------------------------


def _list_members(as_json: bool, instance: str | None, home: Path) -> None:
    wallet = open_wallet(home, instance)

    async def go() -> list[Member]:
        async with wallet:
            actions.require_active(wallet)
            with progress("Asking the server for the members"):
                return await wallet.members()

    found = run(go())
    if as_json:
        echo_json([member.to_json() for member in found])
        return
    table(
        ["Name", "Public key", "Permissions", "This instance"],
        [[m.name, m.id, f"0x{m.permissions:08x}", "yes" if m.is_self else ""] for m in found],
        empty="No member.",
    )


@click.group(cls=WalletGroup, invoke_without_command=True)
@json_option
@instance_option
@home_option
@click.pass_context
@wallet_command
def members(ctx: click.Context, as_json: bool, instance: str | None, home: Path) -> None:
    """List the trustchain's members (the instances that sync together), or remove one.

    \b
    Examples:
      ledgersync members --json
      ledgersync members remove phone --device software:alice --yes
    """
    if ctx.invoked_subcommand is None:
        _list_members(as_json, instance, home)


@members.command("list")
@json_option
@instance_option
@home_option
@click.pass_context
@wallet_command
def members_list(ctx: click.Context, as_json: bool, instance: str | None, home: Path) -> None:
    """List the trustchain's members (the same as `ledgersync members`).

    \b
    Example:
      ledgersync members list --instance laptop
    """
    _list_members(
        bool(inherited(ctx, "as_json", as_json)),
        inherited(ctx, "instance", instance),
        inherited(ctx, "home", home),
    )


@members.command("remove")
@click.argument("member")
@device_option
@instance_option
@home_option
@click.pass_context
@wallet_command
def members_remove(
    ctx: click.Context,
    member: str,
    device_spec: DeviceSpec,
    assume_yes: bool,
    instance: str | None,
    home: Path,
) -> None:
    """Remove MEMBER (its name, or the start of its public key) with your device.

    The trustchain's key is rotated: the removed instance can no longer read anything, and
    the data is re-encrypted under the new key for the others. The removed instance finds out
    at its next command and deletes its keys and data.

    \b
    Example:
      ledgersync members remove phone --device software:alice --yes --instance laptop
    """
    instance = inherited(ctx, "instance", instance)
    home = inherited(ctx, "home", home)
    wallet = open_wallet(home, instance)
    # A software device asking on the console must not fight a live progress bar.
    live = assume_yes or not isinstance(device_spec, SoftwareSpec)

    async def go() -> tuple[Member, str]:
        async with wallet:
            actions.require_active(wallet)
            device = await open_cli_device(device_spec, home=home, assume_yes=assume_yes)
            async with device:
                with steps(3, live=live) as shown:
                    removed = await wallet.remove_member(device, member, on_progress=shown.step)
                    shown.finish()
                    return removed

    removed, path = run(go())
    click.echo(
        f"Removed member {clean(removed.name)!r} ({removed.id[:16]}…). The key was rotated: "
        f"the data is now encrypted under {path}."
    )


# --- deactivate ---------------------------------------------------------------------------


@click.command(cls=WalletCommand)
@click.option("--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@instance_option
@home_option
@wallet_command
def deactivate(assume_yes: bool, instance: str | None, home: Path) -> None:
    """Turn Ledger Sync off: delete the synced data and the trustchain, for every instance.

    Every other instance stops syncing (it finds out at its next command and deletes its
    keys and data); this instance's keys and synced data are deleted here. Asks first,
    unless --yes (or answer on standard input: `echo y | ledgersync deactivate`).

    \b
    Example:
      ledgersync deactivate --instance laptop --yes
    """
    wallet = open_wallet(home, instance)
    actions.require_active(wallet)
    if not assume_yes:
        click.confirm(
            f"Turn Ledger Sync off? This deletes the synced data and the trustchain on "
            f"{wallet.record().server} for EVERY instance, and the keys of {wallet.name!r}",
            abort=True,
            err=True,
        )

    async def go() -> None:
        async with wallet:
            with progress("Deleting the cloud data and the trustchain"):
                await wallet.deactivate()

    run(go())
    click.echo(
        f"Ledger Sync is off: the trustchain and its data were deleted, and {wallet.name!r} "
        "no longer holds keys or synced data."
    )
