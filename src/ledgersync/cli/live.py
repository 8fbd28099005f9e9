"""``ledgersync sync [--watch]`` and ``ledgersync status``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..wallet import SyncReport, actions
from ..wallet.errors import WalletError
from ..wallet.instances import utc_now
from ..wallet.session import DEFAULT_POLL_INTERVAL
from .common import (
    EXIT_UNREACHABLE,
    WalletCommand,
    clean,
    echo_json,
    echo_json_line,
    home_option,
    instance_option,
    json_option,
    note,
    open_wallet,
    progress,
    run,
    wallet_command,
)
from .render import echo_report, report_lines, summary


@click.command(cls=WalletCommand)
@click.option("--watch", is_flag=True, help="Keep syncing, live, until interrupted.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_POLL_INTERVAL,
    show_default=True,
    metavar="SECONDS",
    help="With --watch: ask the server at least this often (its notifications wake us sooner).",
)
@json_option
@instance_option
@home_option
@wallet_command
def sync(watch: bool, interval: float, as_json: bool, instance: str | None, home: Path) -> None:
    """Sync with the other instances: one round, or live with --watch.

    A round pulls the server's document, merges it with the changes made here (every
    change survives; when both sides changed the same entry, the conflict is printed with
    both values), pushes the result, and prints what changed. With --watch it goes on: at
    every notification from the server, every local change (from other commands), and every
    --interval seconds, printing each change as it happens. Ctrl-C (SIGINT) or SIGTERM ends
    it cleanly (exit 0, nothing half-written). With --json: one JSON object, or with --watch
    one JSON object per line and per round.

    \b
    Examples:
      ledgersync sync --instance phone
      ledgersync sync --watch --json --instance phone
    """
    wallet = open_wallet(home, instance)
    if not watch:

        async def once() -> SyncReport:
            async with wallet:
                actions.require_active(wallet)
                with progress(f"Syncing with {wallet.record().server}"):
                    return await wallet.sync()

        report = run(once())
        if as_json:
            echo_json(report.to_json())
        else:
            echo_report(report)
        return

    first = True

    def on_report(report: SyncReport) -> None:
        nonlocal first
        if as_json:
            echo_json_line({"time": utc_now(), **report.to_json()})
        else:
            stamp = time.strftime("%H:%M:%S")
            if first or report.changed or report.rotated:
                click.echo(f"{stamp}\t{summary(report)}")
            for line in report_lines(report):
                click.echo(f"{stamp}\t{line}")
        first = False

    def on_error(error: WalletError) -> None:
        note(f"Warning: {error} (will retry)")

    listening = False

    def on_listening() -> None:
        nonlocal listening
        if not listening:
            note("Live: subscribed to the server's notifications.")
        listening = True

    async def live() -> None:
        async with wallet:
            record = actions.require_active(wallet)
            note(f"Watching {wallet.name!r} on {record.server}; Ctrl-C stops.")
            await actions.watch_until_signalled(
                wallet,
                on_report=on_report,
                on_error=on_error,
                poll_interval=interval,
                on_listening=on_listening,
            )

    run(live())
    note("Stopped.")


def _state(status: dict[str, Any]) -> str:
    if status["active"]:
        return "active"
    if status["purged"]:
        return f"off: {status['purged']['message']}"
    return "not active (`ledgersync activate` or `ledgersync pair`)"


@click.command(cls=WalletCommand)
@click.option("--offline", is_flag=True, help="Do not ask the server (no members list).")
@json_option
@instance_option
@home_option
@wallet_command
def status(offline: bool, as_json: bool, instance: str | None, home: Path) -> None:
    """Show the instance: server, trustchain, members, document version, pending changes.

    Exits 3 (after printing) when the server cannot be reached.

    \b
    Example:
      ledgersync status --json --instance laptop
    """
    wallet = open_wallet(home, instance)

    online = not offline and wallet.record().active

    async def go() -> dict[str, Any]:
        async with wallet:
            if not online:
                return await wallet.status(online=False)
            with progress(f"Asking {wallet.record().server}"):
                return await wallet.status()

    shown = run(go())
    if as_json:
        echo_json(shown)
    else:
        members = shown["members"]
        rows = [
            ("instance", shown["instance"]),
            ("server", f"{shown['server']} ({shown['serverState']})"),
            ("member name", shown["memberName"]),
            ("member key", shown["memberId"] or "none yet"),
            ("state", _state(shown)),
            ("trustchain", shown["trustchainId"] or "none"),
            ("application path", shown["applicationPath"] or "none"),
            (
                "members",
                "not checked"
                if members is None
                else ", ".join(
                    f"{m['name']} (this instance)" if m["self"] else m["name"] for m in members
                ),
            ),
            ("document version", shown["version"]),
            ("last sync", shown["lastSync"] or "never"),
            ("pending changes", shown["pendingChanges"]),
            (
                "quarantined",
                ", ".join(f"{key}: {why}" for key, why in shown["quarantined"].items()) or "none",
            ),
        ]
        for key, value in rows:
            click.echo(f"{key + ':':<18} {clean(value)}")
        for change in shown["pending"]:
            click.echo(f"  pending\t{change['module']}\t{clean(change['entry'])}\t{change['kind']}")
    if shown["serverState"] == "unreachable":
        note(f"Warning: cannot reach the server at {shown['server']}.")
        raise click.exceptions.Exit(EXIT_UNREACHABLE)
