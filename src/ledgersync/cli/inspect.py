"""``ledgersync inspect``: verify a trustchain and print it.

Auditors run it on large trees and in scripts, so it loads only what it needs: the protocol's
inspection and its rendering, never the SDK, an HTTP client or the server.
"""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click

from ..protocol import inspection
from . import inspection_text

#: What a trustchain file holds, for the error that says a file is not one.
EXPECTED = "expected hex, or the JSON object GET /v1/trustchain/{id} returns"


def stdin_is_a_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _unreadable(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _read(source: str) -> bytes:
    limit = inspection.MAX_INPUT_LENGTH + 1
    if source == "-":
        return bytes(sys.stdin.buffer.read(limit))
    with open(source, "rb") as handle:
        return handle.read(limit)


@click.command()
@click.argument("source", required=False, type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def inspect(ctx: click.Context, source: str | None, as_json: bool) -> None:
    """Verify a stream or a whole trustchain and print its streams, blocks and members.

    SOURCE is a file (or - for standard input) holding hex, or the JSON object that
    GET /v1/trustchain/{id} returns. Without SOURCE, standard input is read, unless it is a
    terminal. Exit status: 0 valid, 1 invalid, 2 unreadable input.
    """
    if source is None:
        if stdin_is_a_terminal():
            # Nothing was piped in: say how to use it rather than wait for typed hex.
            click.echo(ctx.get_help(), err=True)
            sys.exit(2)
        source = "-"
    name = "standard input" if source == "-" else source
    try:
        data = _read(source)
    except OSError as exc:
        _unreadable(f"cannot read {name}: {exc.strerror or exc}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _unreadable(f"{name} is not a trustchain file: it is binary, not text ({EXPECTED})")
    try:
        report = inspection.inspect_text(text)
    except inspection.UnreadableInput as exc:
        _unreadable(f"{name} is not a trustchain file: {exc}")
    if as_json:
        click.echo(json.dumps(inspection_text.to_json(report), indent=2))
    else:
        click.echo(inspection_text.render_text(report))
    sys.exit(0 if report.valid else 1)
