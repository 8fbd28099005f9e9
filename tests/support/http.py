"""Raw HTTP over a socket, for requests an HTTP client would not send (or not that way):

* :func:`request_bytes` writes a request by hand (kept alive, or ``Connection: close``);
* :func:`raw_exchange` sends bytes on a fresh connection and returns what came back before the
  server closed it (or the deadline passed) as a :class:`RawAnswer`, judged like any answer to
  hostile input by :func:`refusal_problem`;
* :func:`connect`, :func:`read_response`, :func:`read_until_closed` and :func:`drip` work on a
  blocking connection the test keeps (slow clients, kept-alive connections, limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx2

from . import DEADLINE


def request_bytes(
    method: str = "GET",
    target: str = "/_info",
    headers: dict[str, str] | None = None,
    *,
    body: bytes = b"",
    close: bool = True,
) -> bytes:
    """A request as bytes; ``close=False`` keeps the connection open for the next one."""
    lines = [f"{method} {target} HTTP/1.1", "Host: ledgersync.test"]
    if close:
        lines.append("Connection: close")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body and not any(name.lower() == "content-length" for name in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def keep_alive_request(
    method: str = "GET", target: str = "/_info", headers: dict[str, str] | None = None
) -> bytes:
    """A request after which the connection stays open (for limits on kept-alive ones)."""
    return request_bytes(method, target, headers, close=False)


def content_length(head: bytes) -> int | None:
    """The ``Content-Length`` of a response head, if it has one."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or b"0")
    return None


def refusal_problem(status: int, headers: Any, body: bytes) -> str | None:
    """What is wrong with this answer to hostile input, or None: no 5xx, and every 4xx is
    the server's JSON error (``{"status", "message", …}`` with the same status)."""
    if status >= 500:
        return f"answered {status}: {body[:200]!r}"
    if status < 400:
        return None
    content_type = headers.get("content-type", "") if headers is not None else ""
    if "application/json" not in content_type:
        return f"{status} without a JSON body ({content_type!r}): {body[:200]!r}"
    try:
        error = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:200]!r}"
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return f"{status} without a message: {body[:200]!r}"
    if error.get("status") != status:
        return f"{status} whose body says status {error.get('status')!r}"
    return None


def response_problem(response: httpx2.Response) -> str | None:
    return refusal_problem(response.status_code, response.headers, response.content)


@dataclass
class RawAnswer:
    data: bytes
    closed: bool  # the server closed the connection (else: the deadline passed)

    @property
    def status(self) -> int | None:
        line = self.data.split(b"\r\n", 1)[0]
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def headers(self) -> dict[str, str]:
        head = self.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
        pairs = (line.decode("latin-1").split(":", 1) for line in head if b":" in line)
        return {name.strip().lower(): value.strip() for name, value in pairs}

    @property
    def body(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.data else b""

    def problem(self) -> str | None:
        """Like :func:`refusal_problem`, for a raw answer. A refusal by the HTTP layer itself
        (uvicorn answering a request it could not parse, before the app sees it) may have a
        plain-text body, but must still be a 4xx."""
        if self.status is None:
            return None if self.closed else f"no answer and not closed: {self.data[:200]!r}"
        if 400 <= self.status < 500 and "application/json" not in self.headers.get(
            "content-type", ""
        ):
            return None  # refused by the HTTP layer
        return refusal_problem(self.status, self.headers, self.body)


async def raw_exchange(
    port: int,
    data: bytes,
    *,
    deadline: float = DEADLINE,
    half_close: bool = False,
    until_status: bool = False,
) -> RawAnswer:
    """Send ``data`` on a new connection; read until the server closes (or, with
    ``until_status``, until a whole response head arrived), within ``deadline``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    closed = False
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            if half_close:
                writer.write_eof()
        try:
            async with asyncio.timeout(deadline):
                while True:
                    chunk = await reader.read(65536)
                    if not chunk:
                        closed = True
                        break
                    received += chunk
                    if until_status and b"\r\n\r\n" in received and _complete(received):
                        break
        except TimeoutError:
            pass
        except ConnectionError:
            closed = True
    finally:
        writer.transport.abort()
    return RawAnswer(bytes(received), closed)


def _complete(data: bytearray) -> bool:
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    length = content_length(head)
    return length is None or len(body) >= length


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection to the server from ``source`` (any 127.x.y.z address is this host)."""
    return socket.create_connection(
        ("127.0.0.1", port), timeout=DEADLINE, source_address=(source, 0)
    )


def read_response(connection: socket.socket) -> tuple[int, bytes]:
    """One response (status, body) from a connection that may stay open afterwards."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"closed before a full response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = content_length(head) or 0
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "closed in the middle of a response body"
        body += chunk
    return int(head.split()[1]), body


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes; TimeoutError if it never does."""
    chunks = []
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def drip(connection: socket.socket, data: bytes, every: float) -> float:
    """A slow client: one byte of ``data`` every ``every`` seconds, until the server speaks
    or closes. Returns how long that took; fails if the server lets it go on."""
    started = time.monotonic()
    for byte in data:
        readable, _, _ = select.select([connection], [], [], every)  # the pause between bytes
        if readable:
            return time.monotonic() - started
        try:
            connection.send(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        if time.monotonic() - started > DEADLINE:
            break
    raise AssertionError(f"the server still reads a client sending a byte every {every} s")
