"""The QR relay's room logic, without HTTP."""

from ledgersync.protocol import KeyPair
from ledgersync.server.keyring.qr import MAX_HELD_BYTES, MAX_HELD_FRAMES, HeldFrame, Room


def host_key() -> str:
    return KeyPair.generate().public_key.hex()


def test_held_frames_are_bounded() -> None:
    room = Room(host_key())
    for index in range(MAX_HELD_FRAMES + 5):
        room.hold(HeldFrame(None, f"frame {index}", None))
    assert [frame.text for frame in room.held] == [f"frame {i}" for i in range(MAX_HELD_FRAMES)]
    room = Room(host_key())
    room.hold(HeldFrame(None, None, bytes(MAX_HELD_BYTES - 10)))
    room.hold(HeldFrame(None, "x" * 11, None))  # would pass the byte bound: dropped
    room.hold(HeldFrame(None, "y" * 10, None))
    assert [frame.size for frame in room.held] == [MAX_HELD_BYTES - 10, 10]
