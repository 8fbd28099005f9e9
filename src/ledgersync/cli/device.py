"""``ledgersync device …``: software device profiles, and a look at any device.

Also the shared ``--device`` option: other commands that need a device decorate themselves
with :func:`device_option` and open it with :func:`open_cli_device`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from ..device import (
    ApduDevice,
    ApprovalRequest,
    Approver,
    Device,
    DeviceError,
    DeviceSpec,
    DeviceSpecError,
    Emulator,
    InvalidMnemonicError,
    ProfileStore,
    default_home,
    open_device,
    parse_device_spec,
)
from ..device.identity import TEST_ATTESTATION_PRIVATE_KEY
from ..device.profiles import HOME_ENV, DeviceProfile, ProfileError, ProfileNotFoundError
from ..device.spec import SPEC_HELP, HidSpec, SoftwareSpec, SpeculosSpec
from ..device.speculos import DEFAULT_HOST, DEFAULT_PORT, serve_emulator

T = TypeVar("T")


class DeviceSpecParam(click.ParamType[DeviceSpec, Any]):
    name = "device"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> DeviceSpec:
        if isinstance(value, SoftwareSpec | SpeculosSpec | HidSpec):
            return value
        try:
            return parse_device_spec(str(value))
        except DeviceSpecError as exc:
            self.fail(str(exc), param, ctx)


def device_option(command: Callable[..., T]) -> Callable[..., T]:
    """``--device SPEC`` (or ``$LEDGERSYNC_DEVICE``) and ``--yes`` for software approvals."""
    command = click.option(
        "--yes",
        "assume_yes",
        is_flag=True,
        help="Approve every request of a software device without asking.",
    )(command)
    return click.option(
        "--device",
        "device_spec",
        type=DeviceSpecParam(),
        envvar="LEDGERSYNC_DEVICE",
        required=True,
        help=f"The device to use: {SPEC_HELP}.",
    )(command)


home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=HOME_ENV,
    default=lambda: str(default_home()),
    show_default="$LEDGERSYNC_HOME or ~/.config/ledgersync",
    help="Where ledgersync keeps its files.",
)


def console_approver(assume_yes: bool) -> Approver:
    """A software device's approval, asked on the console (stderr), or granted with --yes."""

    def approve(request: ApprovalRequest) -> bool:
        if assume_yes:
            click.echo(f"Software device: approved: {request.describe()}", err=True)
            return True
        return click.confirm(f"Software device: {request.describe()}", default=False, err=True)

    return approve


def tell_user(request: ApprovalRequest) -> None:
    click.echo(f"Check your device and approve: {request.prompt}", err=True)


async def open_cli_device(spec: DeviceSpec, *, home: Path, assume_yes: bool) -> Device:
    return await open_device(
        spec, home=home, approver=console_approver(assume_yes), on_prompt=tell_user
    )


def friendly_errors(command: Callable[..., T]) -> Callable[..., T]:
    """Device, profile, phrase and file errors become ``Error: …`` and exit code 1, not a
    trace."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return command(*args, **kwargs)
        except (DeviceError, InvalidMnemonicError) as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from exc

    return wrapper


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def _read_phrase(mnemonic_file: str | None) -> str:
    if mnemonic_file is None:
        phrase: str = click.prompt("Recovery phrase", hide_input=True, err=True)
        return phrase
    where = "standard input" if mnemonic_file == "-" else mnemonic_file
    try:
        with click.open_file(mnemonic_file, encoding="utf-8") as handle:
            return str(handle.read())
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"cannot read the recovery phrase from {where}: it is not UTF-8 text"
        ) from exc
    except OSError as exc:
        raise click.ClickException(
            f"cannot read the recovery phrase from {where}: {exc.strerror or exc}"
        ) from exc


def stdin_is_a_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _read_passphrase(with_passphrase: bool) -> str:
    if not with_passphrase:
        return ""
    passphrase: str = click.prompt(
        "BIP39 passphrase", hide_input=True, confirmation_prompt=True, err=True
    )
    return passphrase


def _describe(store: ProfileStore, profile: DeviceProfile) -> None:
    identity = profile.identity()
    click.echo(f"name:               {profile.name}")
    click.echo(f"seed-id public key: {identity.public_key.hex()}")
    click.echo(f"passphrase:         {'yes' if profile.passphrase else 'no'}")
    kind = "the app's TEST key" if profile.uses_test_attestation else "custom key"
    click.echo(f"attestation key:    {identity.attestation.public_key.hex()} ({kind})")
    click.echo(f"created:            {profile.created}")
    click.echo(f"file:               {store.path_for(profile.name)}")


@click.group()
def device() -> None:
    """Software devices (profiles on disk) and connections to Ledger devices."""


attestation_option = click.option(
    "--attestation-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A 32-byte private key (hex) to attest logins with, instead of the app's TEST key.",
)


def _read_attestation_key(path: Path | None) -> bytes:
    if path is None:
        return TEST_ATTESTATION_PRIVATE_KEY
    try:
        key = bytes.fromhex(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.BadParameter(f"cannot read a hex key from {path}: {exc}") from exc
    if len(key) != 32:
        raise click.BadParameter(f"{path} holds {len(key)} bytes; a private key is 32")
    return key


@device.command("new")
@click.argument("name")
@home_option
@click.option("--with-passphrase", is_flag=True, help="Ask for a BIP39 passphrase too.")
@attestation_option
@click.option("--show-mnemonic", is_flag=True, help="Print the new recovery phrase.")
@friendly_errors
def new(
    name: str,
    home: Path,
    with_passphrase: bool,
    attestation_key_file: Path | None,
    show_mnemonic: bool,
) -> None:
    """Create software device NAME with a fresh 24-word recovery phrase."""
    store = ProfileStore(home)
    store.path_for(name)  # a bad name fails before any prompt
    attestation_key = _read_attestation_key(attestation_key_file)
    profile = store.create(
        name, passphrase=_read_passphrase(with_passphrase), attestation_key=attestation_key
    )
    _describe(store, profile)
    if show_mnemonic:
        click.echo(f"recovery phrase:    {profile.mnemonic}")
    else:
        click.echo("The recovery phrase is in that file (0600); `show --show-mnemonic` prints it.")


@device.command("import")
@click.argument("name")
@home_option
@click.option(
    "--mnemonic-file",
    metavar="PATH",
    help="Read the recovery phrase from PATH ('-' for stdin) instead of a hidden prompt.",
)
@click.option("--with-passphrase", is_flag=True, help="Ask for a BIP39 passphrase too.")
@attestation_option
@friendly_errors
def import_(
    name: str,
    home: Path,
    mnemonic_file: str | None,
    with_passphrase: bool,
    attestation_key_file: Path | None,
) -> None:
    """Create software device NAME from an existing recovery phrase."""
    store = ProfileStore(home)
    store.path_for(name)
    attestation_key = _read_attestation_key(attestation_key_file)
    phrase = _read_phrase(mnemonic_file)
    profile = store.create(
        name,
        mnemonic=phrase,
        passphrase=_read_passphrase(with_passphrase),
        attestation_key=attestation_key,
    )
    _describe(store, profile)


@device.command("list")
@home_option
@friendly_errors
def list_(home: Path) -> None:
    """List the software devices."""
    store = ProfileStore(home)
    names = store.names()
    if not names:
        click.echo(f"No software device in {store.directory}: `device new NAME` makes one.")
        return
    for name in names:
        profile = store.load(name)
        click.echo(f"{profile.name}\t{profile.identity().public_key.hex()}")


@device.command("show")
@click.argument("name")
@home_option
@click.option(
    "--show-mnemonic", is_flag=True, help="Also print the recovery phrase and passphrase."
)
@friendly_errors
def show(name: str, home: Path, show_mnemonic: bool) -> None:
    """Show software device NAME (its recovery phrase only with --show-mnemonic)."""
    store = ProfileStore(home)
    profile = store.load(name)
    _describe(store, profile)
    if show_mnemonic:
        click.echo(f"recovery phrase:    {profile.mnemonic}")
        if profile.passphrase:
            click.echo(f"passphrase:         {profile.passphrase}")


@device.command("delete")
@click.argument("name")
@home_option
@click.option(
    "--yes",
    "assume_yes",
    is_flag=True,
    help="Delete without asking (needed when standard input is not a terminal).",
)
@friendly_errors
def delete(name: str, home: Path, assume_yes: bool) -> None:
    """Delete software device NAME; its recovery phrase is gone for good.

    The profile file is the only copy of the phrase that ledgersync keeps: unless you wrote
    it down (`ledgersync device show NAME --show-mnemonic`), the device, and with it the
    rotation and removal of members in the trustchains it created, cannot be brought back.
    Asks first on a terminal; elsewhere (a script, a pipe) it refuses unless --yes.

    \b
    Example:
      ledgersync device delete alice --yes
    """
    store = ProfileStore(home)
    path = store.path_for(name)
    try:
        seed_id = store.load(name).identity().public_key.hex()
        what = f"software device {name!r} (seed-id key {seed_id})"
    except ProfileNotFoundError:
        raise
    except ProfileError:
        what = f"software device {name!r} (a damaged profile)"
    gone = (
        "its recovery phrase will be gone for good unless you wrote it down "
        f"(`ledgersync device show {name} --show-mnemonic` prints it)"
    )
    if not assume_yes:
        if not stdin_is_a_terminal():
            raise click.ClickException(
                f"refusing to delete software device {name!r} without confirmation: "
                f"{gone}; run it on a terminal to be asked, or pass --yes"
            )
        click.confirm(f"Delete {what}? {gone[0].upper()}{gone[1:]}", abort=True, err=True)
    store.delete(name)
    click.echo(f"Deleted software device {name!r} ({path}); its recovery phrase is gone.")


@device.command("rename")
@click.argument("name")
@click.argument("new_name", metavar="NEW_NAME")
@home_option
@friendly_errors
def rename(name: str, new_name: str, home: Path) -> None:
    """Rename software device NAME to NEW_NAME (same phrase, same seed-id key).

    Trustchains do not record the name: the device is the same for them. Commands then
    reach it as --device software:NEW_NAME.

    \b
    Example:
      ledgersync device rename alice work-ledger
    """
    ProfileStore(home).rename(name, new_name)
    click.echo(f"Renamed software device {name!r} to {new_name!r}.")


@device.command("info")
@device_option
@home_option
@friendly_errors
def info(device_spec: DeviceSpec, assume_yes: bool, home: Path) -> None:
    """Connect to a device and show its seed-id key (a Ledger asks to approve a login)."""

    async def describe() -> None:
        opened = await open_cli_device(device_spec, home=home, assume_yes=assume_yes)
        async with opened:
            click.echo(f"device:             {device_spec}")
            if isinstance(opened, ApduDevice):
                version = ".".join(str(part) for part in await opened.app_version())
                click.echo(f"app:                {await opened.app_name()} {version}")
            click.echo(f"seed-id public key: {(await opened.seed_id_public_key()).hex()}")

    run(describe())


@device.command("serve")
@click.argument("name")
@home_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option("--yes", "assume_yes", is_flag=True, help="Approve every request without asking.")
@friendly_errors
def serve(name: str, home: Path, host: str, port: int, assume_yes: bool) -> None:
    """Serve software device NAME as a Ledger Sync app on Speculos's APDU port.

    Other commands then reach it with --device speculos:HOST:PORT, through the APDU path.
    """
    identity = ProfileStore(home).load(name).identity()
    emulator = Emulator(identity, approver=console_approver(assume_yes))

    async def listen() -> None:
        server = await serve_emulator(emulator, host, port)
        bound = server.sockets[0].getsockname()[1]
        click.echo(f"Serving {name!r} as a Ledger Sync app on speculos:{host}:{bound}")
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        run(listen())
