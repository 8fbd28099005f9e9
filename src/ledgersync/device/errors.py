"""The device layer's exceptions, and the one table between them and status words.

Every device (software, emulated, Speculos, USB) raises these and nothing else for device
trouble: vendor exceptions and raw status words are translated here, at the boundary
(HWI's ``ledger_exception``). The emulator uses the same table the other way round, so a
refusal inside the software app and a refusal from a real device are the same exception.
"""

from __future__ import annotations

from ..protocol.apdu import StatusWord


class DeviceError(Exception):
    """Base class. ``status_word`` is the device's answer when there was one."""

    #: The status word the device app answers for this condition (None: no APDU involved).
    status_word: int | None = None

    def __init__(self, message: str, *, status_word: int | None = None) -> None:
        super().__init__(message)
        if status_word is not None:
            self.status_word = status_word


class TransportError(DeviceError):
    """The bytes could not go to the device or come back (unplugged, connection closed)."""


class DeviceNotFoundError(TransportError):
    """No device answers where we looked (no USB device, nothing listening at host:port)."""


class TransportUnavailableError(DeviceError):
    """An optional dependency is missing (``pip install 'ledgersync[hid]'`` for USB)."""


class DeviceLockedError(DeviceError):
    """The device is locked: unlock it with its PIN and retry."""


class AppNotOpenError(DeviceError):
    """The device is on its dashboard or in another app: open the Ledger Sync app."""


class UserRefusedError(DeviceError):
    """The user refused the request (login, turning on sync, removing a member)."""

    status_word = StatusWord.DENY


class BadStateError(DeviceError):
    """The device app refused the request in its current state (SW 0xB007)."""

    status_word = StatusWord.BAD_STATE


class WrongSeedError(BadStateError):
    """The trustchain was not created with this device's seed, so it holds none of its keys.

    The real app answers 0xB007 (it cannot derive or publish a key it does not have);
    Ledger Live calls this ``TrustchainNotAllowed`` / "wrong seed".
    """


class StreamRejectedError(DeviceError):
    """The device refused a stream: malformed, badly signed, or not the one it just parsed."""

    status_word = StatusWord.STREAM_PARSER_INVALID_FORMAT


class ParserStateError(DeviceError):
    """A PARSE_STREAM step came out of order (a command before its header, …)."""

    status_word = StatusWord.STREAM_PARSER_BAD_STATE


class StreamClosedError(DeviceError):
    """The stream is closed (it holds a CloseStream); nothing can be added to it."""

    status_word = StatusWord.STREAM_CLOSED


class ChallengeRejectedError(DeviceError):
    """The device refused an authentication challenge (format, value or signature)."""

    status_word = StatusWord.CHALLENGE_NOT_VERIFIED


class ApduError(DeviceError):
    """Any other status word: a malformed request or an unexpected device condition."""


class DeviceResponseError(DeviceError):
    """The device's answer cannot be right: it does not decode, decrypt or verify."""


class UnsupportedOperationError(DeviceError):
    """This kind of device cannot do that (a hardware device never exports a key)."""


class RequestError(DeviceError, ValueError):
    """The request does not fit the trustchain (no such stream, already created, …)."""


_MEANINGS: dict[int, str] = {
    StatusWord.WRONG_DATA: "wrong data",
    StatusWord.WRONG_P1P2: "wrong P1/P2",
    StatusWord.WRONG_DATA_LENGTH: "wrong data length",
    StatusWord.CMD_CODE_NOT_SUPPORTED: "command not supported",
    StatusWord.WRONG_RESPONSE_LENGTH: "wrong response length",
    StatusWord.SIGNATURE_FAIL: "signature failure",
    StatusWord.TP_BUFFER_OVERFLOW: "trusted-property buffer overflow",
}

#: Status words that mean "the device is locked" (0x5515 today, 0x6982 on older firmware).
LOCKED_STATUS_WORDS = frozenset({0x5515, 0x6982})
#: What the dashboard or another app answers to Ledger Sync's APDUs.
APP_NOT_OPEN_STATUS_WORDS = frozenset({0x6E00, 0x6E01, 0x6D00, 0x6D02, 0x5123, 0x6511})

OPEN_THE_APP = "open the Ledger Sync app on the device and retry"


def error_for_status(status_word: int) -> DeviceError:
    """The exception a host raises for a status word other than 0x9000."""
    hex_sw = f"0x{status_word:04X}"
    if status_word in LOCKED_STATUS_WORDS:
        return DeviceLockedError(
            f"the device is locked ({hex_sw}): unlock it and retry", status_word=status_word
        )
    if status_word in APP_NOT_OPEN_STATUS_WORDS:
        return AppNotOpenError(
            f"the Ledger Sync app is not open ({hex_sw}): {OPEN_THE_APP}", status_word=status_word
        )
    if status_word == StatusWord.DENY:
        return UserRefusedError("the request was refused on the device (0x6985)")
    if status_word == StatusWord.BAD_STATE:
        return WrongSeedError(
            "the device refused (0xB007): this trustchain was not created with this device's "
            "seed (wrong seed / TrustchainNotAllowed)"
        )
    if status_word == StatusWord.STREAM_PARSER_INVALID_FORMAT:
        return StreamRejectedError(
            "the device refused the stream (0xB00A): it is malformed, badly signed, or changed "
            "since the device parsed it"
        )
    if status_word == StatusWord.STREAM_PARSER_BAD_STATE:
        return ParserStateError("the device got a stream step out of order (0xB009)")
    if status_word == StatusWord.STREAM_CLOSED:
        return StreamClosedError("the stream is closed (0xB00C)")
    if status_word in (
        StatusWord.PARSER_INVALID_FORMAT,
        StatusWord.PARSER_INVALID_VALUE,
        StatusWord.CHALLENGE_NOT_VERIFIED,
    ):
        return ChallengeRejectedError(
            f"the device refused the challenge ({hex_sw}: "
            f"{StatusWord(status_word).name.lower().replace('_', ' ')})",
            status_word=status_word,
        )
    meaning = _MEANINGS.get(status_word, "unexpected status")
    return ApduError(f"the device answered {hex_sw} ({meaning})", status_word=status_word)
