"""``ledgersync instance new|list|remove``: the wallet instances kept on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..wallet import InstanceStore, actions
from ..wallet.errors import InstanceError
from ..wallet.instances import check_instance_name, check_server_url
from .common import (
    WalletGroup,
    echo_json,
    home_option,
    json_option,
    note,
    table,
    wallet_command,
)


def _checked(check: Any) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            result: str = check(value)
        except InstanceError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
        return result

    return callback


@click.group(cls=WalletGroup)
def instance() -> None:
    """The wallet instances on this machine (in $LEDGERSYNC_HOME/instances).

    An instance is one install of Ledger Sync, like one Ledger Live: its own member key,
    its trustchain, its synced data. Commands pick one with --instance NAME (or
    $LEDGERSYNC_INSTANCE); when there is only one, it is used.
    """


@instance.command("new")
@click.argument("name", callback=_checked(check_instance_name))
@click.option(
    "--server",
    required=True,
    metavar="URL",
    callback=_checked(check_server_url),
    help="The Ledger Sync server (Key Ring and Cloud Sync on one URL).",
)
@click.option(
    "--member-name",
    metavar="TEXT",
    help="The name other instances see for this one [NAME].",
)
@home_option
@wallet_command
def new(name: str, server: str, member_name: str | None, home: Path) -> None:
    """Create instance NAME, using the server at URL (nothing is sent yet).

    \b
    Example:
      ledgersync instance new laptop --server http://localhost:8080 --member-name "My laptop"
    """
    record = InstanceStore(home).create(name, server, member_name)
    click.echo(
        f"Created instance {record.name!r} on {record.server} (member name {record.member_name!r})."
    )
    note(
        "Next: `ledgersync activate --device …` to create or join the trustchain with your "
        "device, or `ledgersync pair` to join another instance's."
    )


@instance.command("list")
@json_option
@home_option
@wallet_command
def list_(as_json: bool, home: Path) -> None:
    """List the instances.

    \b
    Example:
      ledgersync instance list --json
    """
    summaries = actions.instance_summaries(InstanceStore(home))
    if as_json:
        echo_json(summaries)
        return

    def state(summary: dict[str, Any]) -> str:
        if summary["error"]:
            return f"damaged: {summary['error']}"
        if summary["active"]:
            return "active"
        if summary["purged"]:
            return f"off ({summary['purged']['reason']})"
        return "not active"

    table(
        ["Name", "Server", "Member name", "State", "Trustchain", "Last sync"],
        [
            [
                s["name"],
                s["server"] or "",
                s["memberName"] or "",
                state(s),
                s["trustchainId"] or "",
                s["lastSync"] or "never",
            ]
            for s in summaries
        ],
        empty="No instance yet: `ledgersync instance new NAME --server URL` creates one.",
    )


@instance.command("remove")
@click.argument("name", callback=_checked(check_instance_name))
@click.option("--force", is_flag=True, help="Remove it even if it is active (locally only).")
@home_option
@wallet_command
def remove(name: str, force: bool, home: Path) -> None:
    """Delete instance NAME from this machine (nothing changes on the server).

    An active instance is refused without --force: `ledgersync deactivate` turns Ledger Sync
    off for every instance, and `ledgersync members remove` (from another instance) takes it
    out of the trustchain.

    \b
    Example:
      ledgersync instance remove old-laptop
    """
    was_active = actions.remove_instance(InstanceStore(home), name, force=force)
    click.echo(f"Removed instance {name!r} from this machine.")
    if was_active:
        note(
            "It is still a member of its trustchain: remove it from another instance with "
            "`ledgersync members remove`."
        )
