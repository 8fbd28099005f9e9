"""A network the test can break: a TCP proxy in front of the server."""

from __future__ import annotations

import asyncio


class CuttableProxy:
    """A TCP proxy in front of the server that the test can cut, as a network failure would.

    ``cut()`` aborts every open connection; ``refuse()`` stops accepting new ones.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener: asyncio.Server | None = None
        self._transports: list[asyncio.WriteTransport] = []
        self.url = ""

    async def __aenter__(self) -> CuttableProxy:
        self._listener = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._listener.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.refuse()
        self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.transport.abort()
            return
        self._transports += [writer.transport, upstream_writer.transport]
        await asyncio.gather(
            _pump(reader, upstream_writer), _pump(upstream_reader, writer), return_exceptions=True
        )

    def cut(self) -> None:
        for transport in self._transports:
            transport.abort()
        self._transports.clear()

    def refuse(self) -> None:
        if self._listener is not None:
            self._listener.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()
