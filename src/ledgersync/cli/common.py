"""What every wallet command shares: instance selection, exit codes, output.

Exit codes (docs/cli.md): 0 done, 1 refused or failed, 2 usage error, 3 server unreachable.
Every error is one line on standard error, ``Error: <sentence>``; no input prints a traceback.

Output: tables are drawn with rich when standard output is a terminal and ``NO_COLOR`` is not
set; otherwise they are plain lines (a header, then one line per row, cells separated by a
tab, control characters escaped), and there are no colours or cursor movements. Progress goes
to standard error. rich is imported only when something is drawn with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sys
import threading
import unicodedata
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from ..device import DeviceError, InvalidMnemonicError
from ..sdk.errors import LedgerSyncError
from ..wallet import INSTANCE_ENV, InstancePurged, InstanceStore, ServerUnreachable, Wallet
from ..wallet.errors import WalletError
from .device import home_option

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Failed",
    "WalletCommand",
    "WalletGroup",
    "echo_json",
    "home_option",
    "instance_option",
    "json_option",
    "open_wallet",
    "plain_output",
    "progress",
    "run",
    "table",
    "wallet_command",
]


# --- errors and exit codes --------------------------------------------------------------------


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


class Failed(click.ClickException):
    """``Error: <message>`` on one line, exit code 1."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


class Unreachable(Failed):
    """The server could not be reached: exit code 3."""

    exit_code = EXIT_UNREACHABLE


class OneLineUsageError(click.UsageError):
    """A usage error as one line with a hint, instead of click's usage block (exit code 2)."""

    def __init__(self, message: str, command_path: str) -> None:
        super().__init__(one_line(message))
        self.command_path = command_path

    def show(self, file: Any = None) -> None:
        message = self.message.rstrip(".")
        click.echo(f"Error: {message}; see `{self.command_path} --help`", err=True)


def _one_line_usage(exc: click.UsageError, fallback: str) -> OneLineUsageError:
    path = exc.ctx.command_path if exc.ctx is not None else fallback
    return OneLineUsageError(exc.format_message(), path)


class _OneLineErrors:
    """Mixed into commands and groups: their usage errors become one line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)  # type: ignore[misc, no-any-return]
        except (OneLineUsageError, click.exceptions.NoArgsIsHelpError):
            raise
        except click.UsageError as exc:
            raise _one_line_usage(exc, info_name or "ledgersync") from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except (OneLineUsageError, click.exceptions.NoArgsIsHelpError):
            raise
        except click.UsageError as exc:
            raise _one_line_usage(exc, ctx.command_path) from None


class WalletCommand(_OneLineErrors, click.Command):
    pass


class WalletGroup(_OneLineErrors, click.Group):
    command_class = WalletCommand
    group_class = type


def wallet_command(command: Callable[..., T]) -> Callable[..., T]:
    """Map every failure to its exit code and one line; nothing escapes as a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ServerUnreachable as exc:
            raise Unreachable(str(exc)) from None
        except InstancePurged as exc:
            raise Failed(str(exc)) from None
        except (WalletError, DeviceError, InvalidMnemonicError) as exc:
            raise Failed(str(exc)) from None
        except LedgerSyncError as exc:
            raise Failed(f"{exc} ({type(exc).__name__})") from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(EXIT_FAILED) from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise Failed(f"{exc.strerror or exc}{where}") from None
        except Exception as exc:
            raise Failed(
                f"unexpected {type(exc).__name__}: {exc}; this is a bug in ledgersync, "
                "please report it"
            ) from None

    return wrapper


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


# --- instance selection -----------------------------------------------------------------------

instance_option = click.option(
    "--instance",
    "instance",
    metavar="NAME",
    envvar=INSTANCE_ENV,
    default=None,
    help=f"The instance to use [${INSTANCE_ENV}; the only one when there is one].",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (docs/cli.md).")


def inherited(ctx: click.Context, name: str, value: Any) -> Any:
    """``value`` of option ``name``, or the parent group's when only the parent was given it
    (``ledgersync members --instance a remove b``)."""
    parent = ctx.parent
    source = ctx.get_parameter_source(name)
    if parent is None or name not in parent.params:
        return value
    if source in (None, ParameterSource.DEFAULT) or (
        source is ParameterSource.ENVIRONMENT
        and parent.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ):
        return parent.params[name]
    return value


def open_wallet(home: Path, instance: str | None) -> Wallet:
    store = InstanceStore(home)
    return Wallet(store, store.select(instance))


# --- output -----------------------------------------------------------------------------------

_BIDI = {chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def clean(value: Any) -> str:
    """Text safe to print: control characters (synced data is not trusted) escaped."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char in _BIDI or unicodedata.category(char) in ("Cc", "Cs"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def plain_output(stream: Any = None) -> bool:
    """No colours, no cursor tricks: ``NO_COLOR`` set, ``TERM=dumb`` or not a terminal."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return True
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str) -> None:
    """Rows under a header: a rich table on a terminal, tab-separated lines otherwise."""
    if not rows:
        click.echo(empty)
        return
    if plain_output():
        click.echo("\t".join(column.lower().replace(" ", "_") for column in columns))
        for row in rows:
            click.echo("\t".join(clean(cell).replace("\t", "\\t") for cell in row))
        return
    from rich.table import Table
    from rich.text import Text

    drawn = Table(header_style="bold", show_edge=False, pad_edge=False)
    for column in columns:
        drawn.add_column(column, overflow="fold")  # ids and keys whole, never cut with "…"
    for row in rows:
        drawn.add_row(*(Text(clean(cell)) for cell in row))
    console().print(drawn)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def echo_json_line(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def note(text: str) -> None:
    """A message about what happened, on standard error (standard output keeps the data)."""
    click.echo(clean(text), err=True)


class Progress:
    """What a command waits for: a spinner on a terminal, plain lines otherwise."""

    def __init__(self, status: Any) -> None:
        self._status = status

    def update(self, text: str) -> None:
        if self._status is None:
            note(f"{text}…")
        else:
            self._status.update(text + "…")


@contextlib.contextmanager
def progress(text: str, *, spinner: bool = True) -> Iterator[Progress]:
    """Tell the user what we wait for (the network, a device) while inside."""
    if not spinner or plain_output(sys.stderr):
        note(f"{text}…")
        yield Progress(None)
        return
    with console(stderr=True).status(text + "…") as status:
        yield Progress(status)


class Steps:
    """Numbered steps of a long operation: a rich progress bar on a terminal, lines otherwise."""

    def __init__(self, total: int, bar: Any) -> None:
        self.total = total
        self.done = 0
        self._bar = bar
        self._task: Any = bar.add_task("", total=total) if bar is not None else None

    def step(self, text: str) -> None:
        self.done = min(self.done + 1, self.total)
        if self._bar is None:
            note(f"[{self.done}/{self.total}] {text}")
        else:
            self._bar.update(self._task, description=clean(text), completed=self.done - 1)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.total)


@contextlib.contextmanager
def steps(total: int, *, live: bool = True) -> Iterator[Steps]:
    if not live or plain_output(sys.stderr):
        yield Steps(total, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(stderr=True),
        transient=False,
    ) as bar:
        yield Steps(total, bar)


# --- reading a line without blocking the event loop -------------------------------------------


async def read_line(prompt: str) -> str | None:
    """One line of standard input (None at its end), read in a daemon thread so that the
    event loop keeps serving the network, and an exit never waits for the reader."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def read() -> None:
        try:
            line: str | None = sys.stdin.readline()
        except (OSError, ValueError):
            line = None
        result = line.rstrip("\r\n") if line else None
        with contextlib.suppress(RuntimeError):  # the loop may be gone
            loop.call_soon_threadsafe(
                lambda: answer.done() or answer.set_result(result)  # type: ignore[func-returns-value]
            )

    click.echo(prompt, err=True, nl=False)
    threading.Thread(target=read, daemon=True).start()
    line = await answer
    if not _isatty(sys.stdin):
        click.echo(err=True)  # the typed line's end, which a terminal would have shown
    return line


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
