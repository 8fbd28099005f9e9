"""How wallet results read on the command line (sync reports, edit outcomes)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..wallet import Change, Conflict, SyncReport
from ..wallet.actions import EditOutcome
from .common import clean, note

MAX_VALUE = 120


def value_text(value: Any) -> str:
    """A compact rendering of an entry's value (a label entry shows its record)."""
    if isinstance(value, dict) and isinstance(value.get("record"), dict):
        value = value["record"]
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return clean(text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…")


def change_line(direction: str, change: Change) -> str:
    value = "" if change.kind == "removed" else f" {value_text(change.value)}"
    return f"{direction}\t{change.module}\t{clean(change.entry)}\t{change.kind}{value}"


def conflict_line(conflict: Conflict) -> str:
    kept = "this instance's" if conflict.winner == "local" else "the server's"
    return (
        f"conflict\t{conflict.module}\t{clean(conflict.entry)}\there {value_text(conflict.local)}"
        f", server {value_text(conflict.remote)}: kept {kept}"
    )


def report_lines(report: SyncReport) -> list[str]:
    """One line per change received or sent, conflict, rotation, quarantined module."""
    lines = [change_line("received", change) for change in report.received]
    lines += [change_line("sent", change) for change in report.sent]
    lines += [conflict_line(conflict) for conflict in report.conflicts]
    if report.rotated:
        lines.append(
            "rotated\tthe trustchain's key was rotated by another instance; this one followed"
        )
    lines += [
        f"quarantined\t{module}\t{clean(reason)}" for module, reason in report.quarantined.items()
    ]
    return lines


def summary(report: SyncReport) -> str:
    if not report.changed and not report.rotated:
        return f"Up to date (document version {report.version})."
    parts = [f"{len(report.received)} received", f"{len(report.sent)} sent"]
    if report.conflicts:
        parts.append(f"{len(report.conflicts)} conflicts")
    return f"Synced (document version {report.version}): {', '.join(parts)}."


def echo_report(report: SyncReport) -> None:
    click.echo(summary(report))
    for line in report_lines(report):
        click.echo(f"  {line}")


def echo_outcome(done: str, outcome: EditOutcome) -> None:
    """What an edit command prints: what it did, then how the sync went."""
    click.echo(clean(done) if outcome.changed else "Nothing changed: it was already so.")
    if outcome.report is not None:
        echo_report(outcome.report)
    elif outcome.deferred is not None:
        note(f"Not synced: {outcome.deferred}.")
    else:
        note("Saved here only (--no-sync); `ledgersync sync` sends it.")
