"""The wire format of the broker's PostgreSQL notifications: pure functions, no database.

A notification payload is ``<origin>:<sequence>:<index>/<count>:<data>``:

* ``origin``: the random id of the publishing process (its own notifications come back to
  it through LISTEN; the id tells them apart);
* ``sequence``: that process's message counter, so that every payload is distinct and
  PostgreSQL never folds two identical ones of a transaction into one;
* ``index/count``: PostgreSQL caps a payload at 8000 bytes, so a longer message is cut into
  ``count`` parts of at most :data:`CHUNK_BYTES` bytes. A whole ASCII message of at most
  :data:`CHUNK_BYTES` bytes travels as is (``0/1``); otherwise every part is base64-encoded
  (a part of UTF-8 text may split a character) and the position carries a ``b`` suffix
  (``0/3b``). A message (whole) is at most :data:`MAX_MESSAGE_BYTES` bytes.

:func:`encode` cuts a message into payloads, :func:`parse` reads a payload's header, and a
:class:`Reassembler` puts the parts of multi-part messages back together.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass

#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; a part is at most this many
#: bytes before base64 (6668 after), leaving room for the header.
CHUNK_BYTES = 5000
#: The largest message the PostgreSQL broker carries (the QR relay's frames are smaller).
MAX_MESSAGE_BYTES = 1 << 20
#: Incomplete multi-part messages are dropped after this many seconds.
REASSEMBLY_TIMEOUT = 30.0
#: The most parts a message may have.
MAX_PARTS = MAX_MESSAGE_BYTES // CHUNK_BYTES + 1


class MessageTooLarge(ValueError):
    pass


def encode(origin: str, sequence: int, message: str) -> list[str]:
    """The payloads carrying ``message`` (one, unless it is long or not ASCII)."""
    data = message.encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"broker messages are limited to {MAX_MESSAGE_BYTES} bytes")
    header = f"{origin}:{sequence}"
    if len(data) <= CHUNK_BYTES and message.isascii():
        return [f"{header}:0/1:{message}"]
    parts = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    return [
        f"{header}:{index}/{len(parts)}b:{base64.b64encode(part).decode()}"
        for index, part in enumerate(parts)
    ]


def encode_single(origin: str, sequence: int, message: str) -> str:
    """The one payload carrying ``message``: for messages sent inside a database
    transaction (``SELECT pg_notify(…)``), which must fit one notification."""
    payloads = encode(origin, sequence, message)
    if len(payloads) != 1:
        raise MessageTooLarge(f"a transactional message is limited to {CHUNK_BYTES} bytes")
    return payloads[0]


@dataclass(frozen=True)
class Part:
    origin: str
    sequence: str
    index: int
    count: int
    #: The part's text as sent: the message itself, or base64 if ``encoded``.
    data: str
    encoded: bool


def parse(payload: str) -> Part | None:
    """The header and data of one payload, None if it is malformed."""
    try:
        origin, sequence, position, data = payload.split(":", 3)
    except ValueError:
        return None
    encoded = position.endswith("b")
    index_text, _, count_text = position.removesuffix("b").partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        return None
    if not 0 <= index < count <= MAX_PARTS:
        return None
    return Part(origin, sequence, index, count, data, encoded)


class Reassembler:
    """Multi-part messages put back together; incomplete ones forgotten after a timeout."""

    def __init__(
        self, *, timeout: float = REASSEMBLY_TIMEOUT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._timeout = timeout
        self._clock = clock
        self._partial: dict[tuple[str, str], _Partial] = {}

    @property
    def pending(self) -> int:
        """Messages of which some parts arrived, not all."""
        return len(self._partial)

    def add(self, part: Part) -> str | None:
        """The whole message once ``part`` completes it, else None (also if it is invalid)."""
        if not part.encoded:
            return part.data if part.count == 1 else None
        try:
            data = base64.b64decode(part.data, validate=True)
        except ValueError:
            return None
        if part.count == 1:
            return data.decode(errors="replace")
        key = (part.origin, part.sequence)
        now = self._clock()
        partial = self._partial.get(key)
        if partial is None:
            self._expire(now)
            partial = self._partial[key] = _Partial(part.count, now)
        if partial.count != part.count:
            return None
        partial.parts[part.index] = data
        if len(partial.parts) < partial.count:
            return None
        del self._partial[key]
        return b"".join(partial.parts[i] for i in range(partial.count)).decode(errors="replace")

    def _expire(self, now: float) -> None:
        for key, partial in list(self._partial.items()):
            if now - partial.started > self._timeout:
                del self._partial[key]


class _Partial:
    __slots__ = ("count", "parts", "started")

    def __init__(self, count: int, started: float) -> None:
        self.count = count
        self.started = started
        self.parts: dict[int, bytes] = {}
