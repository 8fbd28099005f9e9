"""The ``ledgersync`` command: a thin shell over the library; no logic lives here.

Subcommands live in their own modules and are imported only when invoked, so that
``ledgersync --help`` stays fast and a missing optional dependency only affects its command.
"""

from __future__ import annotations

import importlib

import click

#: command name → "module:attribute" of its click command.
SUBCOMMANDS = {
    "device": "ledgersync.cli.device:device",
    "inspect": "ledgersync.cli.inspect:inspect",
    "serve": "ledgersync.cli.serve:serve",
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
