"""``ledgersync inspect``: verify a trustchain and print it."""

from __future__ import annotations

import json
import sys

import click

from ledgersync.protocol import inspection


@click.command()
@click.argument("source", default="-", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect(source: str, as_json: bool) -> None:
    """Verify a stream or a whole trustchain and print its streams, blocks and members.

    SOURCE is a file (or - for standard input) holding hex, or the JSON object that
    GET /v1/trustchain/{id} returns. Exit status: 0 valid, 1 invalid, 2 unreadable input.
    """
    try:
        if source == "-":
            text = sys.stdin.read(inspection.MAX_INPUT_LENGTH + 1)
        else:
            with open(source, encoding="utf-8") as handle:
                text = handle.read(inspection.MAX_INPUT_LENGTH + 1)
        report = inspection.inspect_text(text)
    except (OSError, UnicodeDecodeError, inspection.UnreadableInput) as exc:
        click.echo(f"Error: cannot read {source}: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(inspection.to_json(report), indent=2))
    else:
        click.echo(inspection.render_text(report))
    sys.exit(0 if report.valid else 1)
