"""Transports move APDUs and nothing else: bytes to the device, bytes back.

A transport's ``exchange`` takes one command APDU and returns the response data followed by
its two status-word bytes, whatever the status; interpreting them is the client's job. It
raises :class:`~ledgersync.device.errors.TransportError` when the bytes cannot travel.

Implementations: :class:`InProcessTransport` (the emulator, in this process),
:class:`~ledgersync.device.speculos.SpeculosTransport` (Speculos's TCP APDU port) and
:class:`~ledgersync.device.hid.HidTransport` (a real device over USB, via ``ledgercomm``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .emulator import Emulator


class Transport(ABC):
    @abstractmethod
    async def exchange(self, apdu: bytes) -> bytes:
        """Send one command APDU; return ``data ‖ SW1 SW2``."""

    async def close(self) -> None:  # noqa: B027 - in-process transports hold nothing
        """Release the connection."""


class InProcessTransport(Transport):
    """Straight to an :class:`Emulator` in this process."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def exchange(self, apdu: bytes) -> bytes:
        return self.emulator.exchange(apdu)
