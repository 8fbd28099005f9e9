"""Which device to use: ``software:NAME``, ``speculos:HOST:PORT`` or ``hid``; and opening it.

* ``software:NAME``: the software device of profile NAME (see :mod:`.profiles`);
* ``speculos:HOST:PORT`` (or ``speculos`` for 127.0.0.1:9999): the Ledger Sync app in
  Speculos, through its APDU port; an IPv6 host is written in brackets, ``[::1]``;
* ``hid``: the first Ledger device on USB (needs ``ledgersync[hid]``).

Opening a hardware device checks that the Ledger Sync app is the one open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..protocol.crypto import Random
from .approval import Approver, PromptListener
from .client import ApduDevice
from .errors import DeviceError
from .hid import HidTransport
from .interface import Device
from .profiles import ProfileStore, check_profile_name
from .software import SoftwareDevice
from .speculos import DEFAULT_HOST, DEFAULT_PORT, SpeculosTransport
from .transport import Transport

SPEC_HELP = "software:NAME, speculos:HOST:PORT or hid"


class DeviceSpecError(ValueError):
    """A ``--device`` value that names no device."""


@dataclass(frozen=True, slots=True)
class SoftwareSpec:
    profile: str

    def __str__(self) -> str:
        return f"software:{self.profile}"


@dataclass(frozen=True, slots=True)
class SpeculosSpec:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"speculos:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class HidSpec:
    def __str__(self) -> str:
        return "hid"


DeviceSpec = SoftwareSpec | SpeculosSpec | HidSpec


def parse_device_spec(text: str) -> DeviceSpec:
    kind, _, rest = text.strip().partition(":")
    if kind == "hid" and not rest:
        return HidSpec()
    if kind == "software":
        try:
            return SoftwareSpec(check_profile_name(rest))
        except DeviceError as exc:
            raise DeviceSpecError(str(exc)) from exc
    if kind == "speculos":
        return _parse_speculos(rest, text)
    raise DeviceSpecError(f"unknown device {text!r}: expected {SPEC_HELP}")


def _parse_speculos(rest: str, text: str) -> SpeculosSpec:
    if not rest:
        return SpeculosSpec()
    host, separator, port_text = rest.rpartition(":")
    if not separator or not host:
        raise DeviceSpecError(
            f"{text!r}: write speculos:HOST:PORT, for example speculos:127.0.0.1:9999"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DeviceSpecError(f"{text!r}: the port must be a number from 1 to 65535")
    return SpeculosSpec(host, int(port_text))


async def open_device(
    spec: DeviceSpec,
    *,
    home: Path,
    approver: Approver,
    on_prompt: PromptListener | None = None,
    random: Random = os.urandom,
) -> Device:
    """Open the device ``spec`` names. ``approver`` decides for a software device;
    ``on_prompt`` is told when a hardware device asks its user."""
    if isinstance(spec, SoftwareSpec):
        profile = ProfileStore(home).load(spec.profile)
        return SoftwareDevice(profile.identity(), approver=approver, random=random)
    transport: Transport
    if isinstance(spec, SpeculosSpec):
        transport = await SpeculosTransport.connect(spec.host, spec.port)
    else:
        transport = await HidTransport.open()
    device = ApduDevice(transport, random=random, on_prompt=on_prompt)
    try:
        await device.ensure_app()
    except BaseException:
        await device.close()
        raise
    return device
