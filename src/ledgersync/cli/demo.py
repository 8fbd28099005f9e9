"""``ledgersync demo``: the self-contained tour (logic in :mod:`ledgersync.wallet.demo`)."""

from __future__ import annotations

import click

from .common import WalletCommand, clean, plain_output, run, wallet_command


@click.command(cls=WalletCommand)
@wallet_command
def demo() -> None:
    """A tour of Ledger Sync, all local, in a few seconds: a server, a device, three instances.

    Starts `ledgersync serve` on a free loopback port with a temporary database, a software
    device, and three instances (laptop, phone, tablet). The laptop creates the trustchain,
    the phone joins with the device, the tablet by QR pairing; an account renamed and a
    label set on the laptop arrive live on the others (timed); the laptop removes the tablet
    (key rotation) and the tablet is ejected; the phone exports CSV and BIP-329; the laptop
    turns Ledger Sync off. Nothing is left behind.

    \b
    Example:
      ledgersync demo
    """
    from ..wallet.demo import DemoEvent, run_demo

    fancy = not plain_output()

    def show(event: DemoEvent) -> None:
        stamp = f"[{event.elapsed:5.2f}s]"
        if event.kind == "step":
            line = f"{stamp} ==> {clean(event.text)}"
            click.echo(click.style(line, bold=True) if fancy else line)
        elif event.kind == "text":
            for line in event.text.splitlines():
                click.echo(f"{' ' * len(stamp)}     | {clean(line)}")
        else:
            click.echo(f"{stamp}     {clean(event.text)}")

    run(run_demo(show))
