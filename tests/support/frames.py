"""Raw websocket frames, for frames a websocket client would not send: :class:`RawWebSocket`
speaks the framing by hand (masked or not, any opcode, reserved bits, lying lengths, invalid
UTF-8) to see how the server ends the connection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from dataclasses import dataclass, field

from . import DEADLINE

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    declared_length: int | None = None,
) -> bytes:
    """One websocket frame as a client sends it (masked), or deliberately wrong."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload) if declared_length is None else declared_length
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = bytes([first, mask_bit | length])
    elif length < 1 << 16:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", length)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", length)
    if mask:
        key = os.urandom(4)
        header += key
        payload = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
    return header + payload


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(OP_CLOSE, struct.pack("!H", code) + reason)


@dataclass
class WsOutcome:
    status: int | None
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    close_code: int | None = None
    ended: bool = False  # the server closed the connection within the deadline
    head: bytes = b""

    @property
    def texts(self) -> list[str]:
        return [payload.decode("utf-8", "replace") for op, payload in self.frames if op == 1]


class RawWebSocket:
    """A hand-made websocket client: the handshake, then whatever frames the test wants."""

    def __init__(self, port: int, target: str, *, extra_headers: dict[str, str] | None = None):
        self.port = port
        self.target = target
        self.extra_headers = extra_headers or {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._buffer = bytearray()

    async def open(self, *, key: str | None = None, version: str = "13") -> WsOutcome:
        """The handshake; ``outcome.status`` is 101 when upgraded."""
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        if key is None:
            key = base64.b64encode(os.urandom(16)).decode()
        headers = {
            "Host": "ledgersync.test",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": version,
            **self.extra_headers,
        }
        request = f"GET {self.target} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items()
        )
        self.writer.write((request + "\r\n").encode("latin-1"))
        await self.writer.drain()
        outcome = WsOutcome(status=None)
        try:
            async with asyncio.timeout(DEADLINE):
                while b"\r\n\r\n" not in self._buffer:
                    chunk = await self.reader.read(65536)
                    if not chunk:
                        outcome.ended = True
                        break
                    self._buffer += chunk
        except TimeoutError:
            return outcome
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)
        outcome.head = head
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) >= 2 and parts[1].isdigit():
            outcome.status = int(parts[1])
        return outcome

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def _read_exactly(self, size: int) -> bytes:
        assert self.reader is not None
        while len(self._buffer) < size:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read_frame(self) -> tuple[int, bytes]:
        first, second = await self._read_exactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._read_exactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._read_exactly(8))
        key = await self._read_exactly(4) if second & 0x80 else b""
        payload = await self._read_exactly(length)
        if key:
            payload = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
        return first & 0x0F, payload

    async def until_closed(
        self, outcome: WsOutcome | None = None, *, answer_pings: bool = True
    ) -> WsOutcome:
        """Read frames until the server's close frame or the end of the connection, within
        :data:`DEADLINE`; ``ended`` is False if neither came."""
        outcome = outcome or WsOutcome(status=101)
        try:
            async with asyncio.timeout(DEADLINE):
                while True:
                    opcode, payload = await self.read_frame()
                    outcome.frames.append((opcode, payload))
                    if opcode == OP_CLOSE:
                        if len(payload) >= 2:
                            (outcome.close_code,) = struct.unpack("!H", payload[:2])
                        else:
                            outcome.close_code = 1005
                        outcome.ended = True
                        with contextlib.suppress(ConnectionError):
                            await self.send(close_frame(outcome.close_code or 1000))
                        return outcome
                    if opcode == OP_TEXT and payload == b"ping" and answer_pings:
                        await self.send(frame(OP_TEXT, b"pong"))
        except (EOFError, ConnectionError):
            outcome.ended = True
        except TimeoutError:
            pass
        return outcome

    async def next_text(self) -> str:
        """The next text frame other than ``ping`` (answered), within :data:`DEADLINE`."""
        async with asyncio.timeout(DEADLINE):
            while True:
                opcode, payload = await self.read_frame()
                if opcode == OP_TEXT and payload == b"ping":
                    await self.send(frame(OP_TEXT, b"pong"))
                    continue
                if opcode == OP_TEXT:
                    return payload.decode()
                raise AssertionError(f"frame {opcode} {payload[:60]!r} where text was expected")

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
