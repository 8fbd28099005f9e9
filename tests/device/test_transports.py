"""Transports: Speculos's TCP port (real sockets), USB HID (through a stand-in ``ledgercomm``)."""

import asyncio
import sys
import types

import pytest

from ledgersync.device import (
    ApduDevice,
    AppNotOpenError,
    CloseRequest,
    DeriveRequest,
    DeviceIdentity,
    DeviceLockedError,
    DeviceNotFoundError,
    DeviceSpecError,
    Emulator,
    SeedRequest,
    TransportError,
    TransportUnavailableError,
    approve_all,
    open_device,
    parse_device_spec,
)
from ledgersync.device.hid import HidTransport
from ledgersync.device.spec import HidSpec, SoftwareSpec, SpeculosSpec
from ledgersync.device.speculos import SpeculosTransport, serve_emulator
from ledgersync.protocol.crypto import KeyPair
from ledgersync.protocol.paths import application_path
from ledgersync.testing import free_port

from ..support.chains import Chain
from .speculos_server import SpeculosServer

h = bytes.fromhex
APP = application_path(16, 0)
HID_MODULE = "ledgercomm.interfaces.hid_device"


async def run_flow(device):
    """Seed, Derive+Add, Close through ``device``; returns the chain."""
    chain = Chain().add((), await device.sign_block(SeedRequest(), None))
    member = KeyPair.generate().public_key
    chain.add(APP, await device.sign_block(DeriveRequest(APP, member, "M"), chain.tree))
    chain.add(APP, await device.sign_block(CloseRequest(APP), chain.tree))
    return chain


@pytest.fixture
def emulator(speculos_phrase):
    return Emulator(DeviceIdentity.from_mnemonic(speculos_phrase), approver=approve_all)


# --- Speculos --------------------------------------------------------------------------------


async def test_a_full_flow_over_the_speculos_port(emulator, tmp_path, vectors):
    with SpeculosServer(emulator.exchange) as server:
        spec = parse_device_spec(f"speculos:127.0.0.1:{server.port}")
        device = await open_device(spec, home=tmp_path, approver=approve_all)
        async with device:
            chain = await run_flow(device)
            expected = vectors["derived_speculos_seed_id_key"]["seed_id_public_key"]
            assert chain.tree.root.creator.hex() == expected
            assert chain.tree.get(APP).closed


async def test_nothing_listening_is_device_not_found():
    port = free_port()
    # The port was just released and nothing listens there.
    with pytest.raises(DeviceNotFoundError, match=f"127.0.0.1:{port}"):
        await SpeculosTransport.connect("127.0.0.1", port)


async def test_a_dropped_connection_is_a_transport_error(emulator):
    with SpeculosServer(lambda apdu: None) as server:
        transport = await SpeculosTransport.connect("127.0.0.1", server.port)
        with pytest.raises(TransportError, match="closed the connection"):
            await transport.exchange(h("e004000000"))
        await transport.close()


@pytest.mark.parametrize(
    ("status", "error"), [("5515", DeviceLockedError), ("6e01", AppNotOpenError)]
)
async def test_opening_checks_the_app(tmp_path, status, error):
    with SpeculosServer(lambda apdu: h(status)) as server, pytest.raises(error):
        await open_device(
            SpeculosSpec("127.0.0.1", server.port), home=tmp_path, approver=approve_all
        )


# --- USB HID ---------------------------------------------------------------------------------


def fake_ledgercomm(exchange=None, open_error=None, construct_error=None):
    """A stand-in for ``ledgercomm.interfaces.hid_device`` with the same names and errors."""
    module = types.ModuleType(HID_MODULE)

    class HIDAPINotInstalledError(ImportError):
        pass

    class CannotFindDeviceError(Exception):
        pass

    class HID:
        closed = False

        def __init__(self):
            if construct_error:
                raise construct_error(module)

        def open(self):
            if open_error:
                raise open_error(module)

        def exchange(self, apdu):
            return exchange(apdu)

        def close(self):
            HID.closed = True

    module.HIDAPINotInstalledError = HIDAPINotInstalledError
    module.CannotFindDeviceError = CannotFindDeviceError
    module.HID = HID
    return module


def emulated_hid(emulator):
    """ledgercomm's HID.exchange returns (sw, data)."""

    def exchange(apdu):
        response = emulator.exchange(apdu)
        return int.from_bytes(response[-2:], "big"), response[:-2]

    return exchange


async def test_a_full_flow_over_usb(monkeypatch, emulator, tmp_path):
    module = fake_ledgercomm(exchange=emulated_hid(emulator))
    monkeypatch.setitem(sys.modules, HID_MODULE, module)
    device = await open_device(HidSpec(), home=tmp_path, approver=approve_all)
    async with device:
        chain = await run_flow(device)
    assert chain.tree.get(APP).closed
    assert module.HID.closed


async def test_usb_without_the_hid_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, HID_MODULE, None)  # as if ledgercomm were not installed
    with pytest.raises(TransportUnavailableError, match=r"pip install 'ledgersync\[hid\]'"):
        await HidTransport.open()


async def test_usb_without_hidapi(monkeypatch):
    module = fake_ledgercomm(construct_error=lambda m: m.HIDAPINotInstalledError())
    monkeypatch.setitem(sys.modules, HID_MODULE, module)
    with pytest.raises(TransportUnavailableError):
        await HidTransport.open()


@pytest.mark.parametrize(
    "error", [lambda m: m.CannotFindDeviceError(0x2C97), lambda m: OSError("open failed")]
)
async def test_usb_without_a_device(monkeypatch, error):
    monkeypatch.setitem(sys.modules, HID_MODULE, fake_ledgercomm(open_error=error))
    with pytest.raises(DeviceNotFoundError, match="no Ledger device found"):
        await HidTransport.open()


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (0x5515, DeviceLockedError, "locked"),
        (0x6E01, AppNotOpenError, "open the Ledger Sync app"),
        (0x6D02, AppNotOpenError, "open the Ledger Sync app"),
    ],
)
async def test_usb_locked_or_on_the_dashboard(monkeypatch, tmp_path, status, error, message):
    module = fake_ledgercomm(exchange=lambda apdu: (status, b""))
    monkeypatch.setitem(sys.modules, HID_MODULE, module)
    with pytest.raises(error, match=message):
        await open_device(HidSpec(), home=tmp_path, approver=approve_all)
    assert module.HID.closed


async def test_a_broken_usb_link_is_a_transport_error(monkeypatch):
    def unplugged(apdu):
        raise OSError("read error")

    monkeypatch.setitem(sys.modules, HID_MODULE, fake_ledgercomm(exchange=unplugged))
    transport = await HidTransport.open()
    with pytest.raises(TransportError, match="USB link"):
        await transport.exchange(h("e004000000"))


# --- --device values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("software:alice", SoftwareSpec("alice")),
        ("hid", HidSpec()),
        ("speculos", SpeculosSpec("127.0.0.1", 9999)),
        ("speculos:localhost:40000", SpeculosSpec("localhost", 40000)),
        ("speculos:[::1]:9999", SpeculosSpec("::1", 9999)),
    ],
)
def test_device_specs(text, spec):
    assert parse_device_spec(text) == spec
    assert parse_device_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text",
    [
        "",
        "usb",
        "hid:0",
        "software:",
        "software:../etc",
        "speculos:host",
        "speculos:h:0",
        "speculos:h:x",
    ],
)
def test_bad_device_specs(text):
    with pytest.raises(DeviceSpecError):
        parse_device_spec(text)


# --- our emulator on the Speculos port ---------------------------------------------------------


async def test_serve_emulator_speaks_speculos_framing(emulator):
    server = await serve_emulator(emulator, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        # Framing checked by hand: len(4) ‖ apdu out, len(4) ‖ data ‖ sw in.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(h("00000005e004000000"))
        await writer.drain()
        length = int.from_bytes(await reader.readexactly(4), "big")
        assert await reader.readexactly(length + 2) == b"Ledger Sync" + h("9000")
        writer.close()
        await writer.wait_closed()
        # And a whole flow through the client transport.
        transport = await SpeculosTransport.connect("127.0.0.1", port)
        device = ApduDevice(transport)
        async with device:
            chain = await run_flow(device)
        assert chain.tree.get(APP).closed


async def test_serving_on_a_busy_port_is_a_clear_error(emulator):
    server = await serve_emulator(emulator, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(TransportError, match=f"cannot listen on 127.0.0.1:{port}"):
            await serve_emulator(emulator, "127.0.0.1", port)
