"""The ``ledgersync`` command: a thin shell over the library; no logic lives here.

Subcommands live in their own modules and are imported only when invoked, so that
``ledgersync --help`` stays fast and a missing optional dependency only affects its command.
"""

from __future__ import annotations

import importlib

import click

#: command name → "module:attribute" of its click command.
SUBCOMMANDS = {
    "accounts": "ledgersync.cli.data:accounts",
    "activate": "ledgersync.cli.trust:activate",
    "deactivate": "ledgersync.cli.trust:deactivate",
    "demo": "ledgersync.cli.demo:demo",
    "device": "ledgersync.cli.device:device",
    "export": "ledgersync.cli.data:export",
    "inspect": "ledgersync.cli.inspect:inspect",
    "instance": "ledgersync.cli.instance:instance",
    "labels": "ledgersync.cli.data:labels",
    "members": "ledgersync.cli.trust:members",
    "pair": "ledgersync.cli.trust:pair",
    "serve": "ledgersync.cli.serve:serve",
    "status": "ledgersync.cli.live:status",
    "sync": "ledgersync.cli.live:sync",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="ledgersync")
def main() -> None:
    """ledgersync: a self-hostable, wire-compatible Ledger Sync (Key Ring + Cloud Sync)."""


if __name__ == "__main__":  # ``python -m ledgersync.cli.main`` (ledgersync.testing's fallback)
    main()
