"""The broker's notification format (``server/broker_format.py``), without a database: what
goes in comes out, whatever its length or characters; malformed payloads are refused."""

from __future__ import annotations

import pytest

from ledgersync.server.broker_format import (
    CHUNK_BYTES,
    MAX_MESSAGE_BYTES,
    MessageTooLarge,
    Reassembler,
    encode,
    encode_single,
    parse,
)


def carried(payloads: list[str], reassembler: Reassembler | None = None) -> list[str]:
    """The messages a receiver gets from ``payloads``, in order."""
    receiver = reassembler or Reassembler()
    messages = []
    for payload in payloads:
        part = parse(payload)
        assert part is not None, payload
        message = receiver.add(part)
        if message is not None:
            messages.append(message)
    return messages


@pytest.mark.parametrize(
    "message",
    [
        "",
        '["live", "00ab", "m/0\'/16\'/0\'", 7]',
        "x" * CHUNK_BYTES,  # the longest single plain part
        "x" * (CHUNK_BYTES + 1),
        "é" * CHUNK_BYTES,  # parts split characters
        "a:b:c/d" * 3000,  # the separators inside the data
        "z" * MAX_MESSAGE_BYTES,
    ],
)
def test_a_message_comes_out_as_it_went_in(message: str) -> None:
    payloads = encode("origin", 7, message)
    assert all(len(payload.encode()) < 8000 for payload in payloads)  # PostgreSQL's limit
    assert carried(payloads) == [message]


def test_short_ascii_messages_travel_as_they_are() -> None:
    assert encode("abc", 3, "hello") == ["abc:3:0/1:hello"]
    part = parse("abc:3:0/1:hello")
    assert part is not None and (part.origin, part.sequence, part.encoded) == ("abc", "3", False)


def test_parts_of_several_messages_may_interleave() -> None:
    first, second = encode("a", 1, "1" * 12_000), encode("b", 1, "2" * 12_000)
    interleaved = [payload for pair in zip(first, second, strict=True) for payload in pair]
    assert carried(interleaved) == ["1" * 12_000, "2" * 12_000]


def test_incomplete_messages_are_forgotten_after_the_timeout() -> None:
    now = [0.0]
    receiver = Reassembler(timeout=30, clock=lambda: now[0])
    stranded = encode("a", 1, "1" * 12_000)
    assert carried(stranded[:1], receiver) == [] and receiver.pending == 1
    now[0] = 31.0
    assert carried(encode("b", 1, "2" * 12_000)[:1], receiver) == []
    assert receiver.pending == 1  # the first one was dropped when the next one began


def test_oversized_messages_are_refused() -> None:
    with pytest.raises(MessageTooLarge):
        encode("a", 1, "x" * (MAX_MESSAGE_BYTES + 1))
    assert encode_single("a", 1, "x" * CHUNK_BYTES) == f"a:1:0/1:{'x' * CHUNK_BYTES}"
    with pytest.raises(MessageTooLarge):
        encode_single("a", 1, "x" * (CHUNK_BYTES + 1))  # must fit one notification


@pytest.mark.parametrize(
    "payload",
    ["", "no separators", "a:1:1/1:data", "a:1:x/1:d", "a:1:0/0:d", "a:1:0/999999:d", "a:1:-1/2:d"],
)
def test_malformed_payloads_are_refused(payload: str) -> None:
    assert parse(payload) is None


def test_bad_base64_is_dropped() -> None:
    part = parse("a:1:0/2b:not base64!")
    assert part is not None and Reassembler().add(part) is None
