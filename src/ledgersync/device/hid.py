"""A real device over USB HID, through ``ledgercomm`` (the optional ``ledgersync[hid]`` extra).

``ledgercomm`` is imported only when a USB device is opened, so everything else works
without it; its blocking reads run in a worker thread. Its exceptions become ours here:
no ``hidapi`` → :class:`TransportUnavailableError`, no device → :class:`DeviceNotFoundError`,
an I/O failure → :class:`TransportError`. A locked device or a closed app answer with status
words, which the client turns into :class:`DeviceLockedError` and :class:`AppNotOpenError`.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from .errors import DeviceNotFoundError, TransportError, TransportUnavailableError
from .transport import Transport

INSTALL_HINT = "USB devices need the hid extra: pip install 'ledgersync[hid]'"
NOT_FOUND_HINT = (
    "no Ledger device found on USB: plug it in, unlock it and open the Ledger Sync app "
    "(on Linux, Ledger's udev rules must be installed)"
)


def _hid_module() -> Any:
    try:
        return importlib.import_module("ledgercomm.interfaces.hid_device")
    except ImportError as exc:
        raise TransportUnavailableError(INSTALL_HINT) from exc


class HidTransport(Transport):
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @classmethod
    async def open(cls) -> HidTransport:
        module = _hid_module()
        try:
            connection = module.HID()
            await asyncio.to_thread(connection.open)
        except module.HIDAPINotInstalledError as exc:
            raise TransportUnavailableError(INSTALL_HINT) from exc
        except module.CannotFindDeviceError as exc:
            raise DeviceNotFoundError(NOT_FOUND_HINT) from exc
        except OSError as exc:
            raise DeviceNotFoundError(f"{NOT_FOUND_HINT} ({exc})") from exc
        return cls(connection)

    async def exchange(self, apdu: bytes) -> bytes:
        try:
            status, data = await asyncio.to_thread(self._connection.exchange, apdu)
        except (OSError, ValueError, AssertionError) as exc:
            # ledgercomm checks its HID framing with asserts; any of these means the link broke.
            raise TransportError(f"the USB link to the device failed: {exc!r}") from exc
        return bytes(data) + int(status).to_bytes(2, "big")

    async def close(self) -> None:
        await asyncio.to_thread(self._connection.close)
