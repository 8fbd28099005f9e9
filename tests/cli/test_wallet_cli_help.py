"""Every wallet command documents itself with an example; ``ledgersync demo`` runs."""

from __future__ import annotations

import subprocess
import time

import click
import pytest
from click.testing import CliRunner

from ledgersync.cli.main import main
from ledgersync.testing import ledgersync_command

WALLET_COMMANDS = [
    "instance new",
    "instance list",
    "instance remove",
    "activate",
    "pair host",
    "pair join",
    "members",
    "members list",
    "members remove",
    "accounts list",
    "accounts add",
    "accounts rename",
    "accounts remove",
    "labels list",
    "labels set",
    "labels remove",
    "labels import",
    "labels export",
    "export",
    "sync",
    "status",
    "deactivate",
    "demo",
]


@pytest.mark.parametrize("command", WALLET_COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = CliRunner().invoke(main, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert f"ledgersync {command.split()[0]}" in result.output.split("Example", 1)[1]


def test_every_group_lists_its_commands() -> None:
    for group in ("instance", "pair", "members", "accounts", "labels"):
        command = main.get_command(click.Context(main), group)
        assert isinstance(command, click.Group)
        listed = {f"{group} {name}" for name in command.list_commands(click.Context(command))}
        assert listed <= set(WALLET_COMMANDS), listed


def test_the_demo_runs_in_seconds() -> None:
    started = time.monotonic()
    done = subprocess.run(
        ledgersync_command("demo"), capture_output=True, text=True, timeout=60, check=False
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < 30
    out = done.stdout
    for expected in (
        "created trustchain",
        "joined; accounts on the phone",
        "tablet joined",
        "phone: 'Savings' and label 'Rent, December' arrived",
        "tablet: 'Savings' and label 'Rent, December' arrived",
        "phone followed the rotation",
        "tablet ejected",
        "kind,reference,label,currency,account,address,date,value",
        '"label": "Rent, December"',
        "phone saw the trustchain deleted",
        "Done in",
    ):
        assert expected in out, out
