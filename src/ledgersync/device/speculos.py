"""Speculos's TCP APDU port (the emulator Ledger's app developers run; default port 9999).

:class:`SpeculosTransport` is the client side; :func:`serve_emulator` serves our emulator
on the same framing, for demonstrations of the APDU path without Speculos.

Framing, as Speculos's ``apdu`` server and ``ledgercomm``'s TCP client use it:

* request: ``length(4, big-endian) ‖ APDU``;
* response: ``length(4, big-endian) ‖ data ‖ SW(2)``, where the length counts the data
  only, not the status word.
"""

from __future__ import annotations

import asyncio
import contextlib

from .emulator import Emulator
from .errors import DeviceNotFoundError, TransportError
from .transport import Transport

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9999
LENGTH_BYTES = 4
STATUS_BYTES = 2
#: Far above any Ledger Sync response (the largest is about 250 bytes); guards a bad peer.
MAX_RESPONSE_LENGTH = 64 * 1024


def frame_request(apdu: bytes) -> bytes:
    return len(apdu).to_bytes(LENGTH_BYTES, "big") + apdu


class SpeculosTransport(Transport):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str):
        self._reader = reader
        self._writer = writer
        self._where = where

    @classmethod
    async def connect(cls, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> SpeculosTransport:
        where = f"{host}:{port}"
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise DeviceNotFoundError(
                f"nothing answers at {where} ({exc.strerror or exc}): is Speculos running "
                "with its APDU port there?"
            ) from exc
        return cls(reader, writer, where)

    async def exchange(self, apdu: bytes) -> bytes:
        try:
            self._writer.write(frame_request(apdu))
            await self._writer.drain()
            length = int.from_bytes(await self._reader.readexactly(LENGTH_BYTES), "big")
            if length > MAX_RESPONSE_LENGTH:
                raise TransportError(f"Speculos at {self._where} announced a {length}-byte answer")
            return await self._reader.readexactly(length + STATUS_BYTES)
        except asyncio.IncompleteReadError as exc:
            raise TransportError(f"Speculos at {self._where} closed the connection") from exc
        except OSError as exc:
            raise TransportError(
                f"lost the connection to Speculos at {self._where}: {exc}"
            ) from exc

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):  # already gone: nothing left to release
            await self._writer.wait_closed()


async def serve_emulator(
    emulator: Emulator, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> asyncio.Server:
    """Serve ``emulator`` on Speculos's APDU framing, so ``speculos:HOST:PORT`` reaches it.

    A stand-in for Speculos when demonstrating the APDU path. Requests are answered one at a
    time, and an approval the emulator asks for holds the connection, as a device would.
    """

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(LENGTH_BYTES), "big")
                response = emulator.exchange(await reader.readexactly(length))
                data = response[:-STATUS_BYTES]
                writer.write(len(data).to_bytes(LENGTH_BYTES, "big") + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the host went away: nothing to answer
        finally:
            writer.close()

    try:
        return await asyncio.start_server(serve, host, port)
    except OSError as exc:
        raise TransportError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
