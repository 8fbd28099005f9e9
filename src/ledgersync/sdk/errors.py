"""The SDK's exceptions: Ledger's error taxonomy, plus typed HTTP and device failures.

Names mirror ``@ledgerhq/ledger-key-ring-protocol/errors`` so that code ported from Ledger Live
reads the same. Every failure the SDK reports is a :class:`LedgerSyncError`; bad input from a
server or a peer never escapes as a raw ``KeyError`` or ``ProtocolError``.
"""

from __future__ import annotations


class LedgerSyncError(Exception):
    """Base class of every error the SDK raises."""


# --- Ledger's taxonomy ------------------------------------------------------------------------


class TrustchainEjected(LedgerSyncError):
    """This member is no longer part of the trustchain (removed, or the stream was closed)."""


class TrustchainNotAllowed(LedgerSyncError):
    """The token grants nothing on this trustchain, or the device holds another seed."""


class TrustchainOutdated(LedgerSyncError):
    """The application stream was rotated: restore the trustchain to get the new key and path."""


class TrustchainNotFound(LedgerSyncError):
    """The trustchain, or its application stream, does not exist."""


class NoTrustchainInitialized(LedgerSyncError):
    """An operation needs a trustchain this instance does not have."""


class TrustchainAlreadyInitialized(LedgerSyncError):
    """This instance is already synchronised with this seed's trustchain."""


class TrustchainAlreadyInitializedWithOtherSeed(LedgerSyncError):
    """This instance is already synchronised with a trustchain of another seed."""


class UserRefusedOnDevice(LedgerSyncError):
    """The user rejected the action on the device."""


class InvalidDigitsError(LedgerSyncError):
    """The QR pairing check code typed on the candidate did not match the host's."""


#: The name used in the issue and in Ledger Live's UI.
InvalidDigits = InvalidDigitsError


class InvalidEncryptionKeyError(LedgerSyncError):
    """A pairing payload could not be decrypted with the session key."""


class QRCodeWSClosed(LedgerSyncError):
    """The pairing websocket closed before the pairing finished."""

    def __init__(self, message: str = "qrcode websocket prematurely closed", *, time: float = 0):
        super().__init__(message)
        #: Seconds the socket stayed open (hosts regenerate a QR code after about 30 s).
        self.time = time


class ScannedOldImportQrCode(LedgerSyncError):
    """The scanned QR code is Ledger Live's legacy account export, not a pairing code."""


class ScannedNewImportQrCode(LedgerSyncError):
    """The scanned QR code is an account import code, not a pairing code."""


class ScannedInvalidQrCode(LedgerSyncError):
    """The scanned text is not a Ledger Sync pairing URL."""


class QRCodeProtocolError(LedgerSyncError):
    """The peer reported a pairing failure of an unknown type, or broke the protocol.

    ``name`` follows Ledger's convention ``TrustchainQRCode-<TYPE>``.
    """

    def __init__(self, failure_type: str, message: str) -> None:
        super().__init__(message)
        self.failure_type = failure_type
        self.name = f"TrustchainQRCode-{failure_type}"


# --- SDK-specific -----------------------------------------------------------------------------


class InvalidArgument(LedgerSyncError, ValueError):
    """A value given to the SDK (or read back from storage) that is malformed."""


class RemoveSelfRefused(LedgerSyncError):
    """``remove_member`` cannot remove the calling member: delete the data or use another one."""


class MemberNotFound(LedgerSyncError):
    """The member to remove is not in the current application stream."""


class InvalidTrustchainData(LedgerSyncError):
    """The server returned streams that do not resolve (bad signature, broken chain, …)."""


class DecryptionError(LedgerSyncError):
    """User data that cannot be decrypted with this trustchain's key (wrong key or tampered)."""


class DeviceFailure(LedgerSyncError):
    """The device failed for a reason other than a refusal or a wrong seed.

    The SDK's view of any other :class:`ledgersync.device.DeviceError` (locked, app closed,
    unplugged, ...), which it keeps as ``__cause__``.
    """


class CloudSyncLocked(LedgerSyncError):
    """A push, pull or destroy is already running on this CloudSyncSDK."""


class CloudSyncPayloadError(LedgerSyncError):
    """A Cloud Sync payload that cannot be decrypted, inflated or parsed as JSON."""


class CloudSyncOutOfSync(LedgerSyncError):
    """A push kept losing the version race after every allowed merge attempt."""

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        #: The server's version at the last attempt.
        self.version = version


# --- transport --------------------------------------------------------------------------------


class APIError(LedgerSyncError):
    """A request that did not succeed: an HTTP error status or an unexpected body."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class LedgerAPI4xx(APIError):
    """A 4xx answer; ``str(error)`` is the server's ``message`` (what Ledger's SDK matches on)."""


class LedgerAPI5xx(APIError):
    """A 5xx answer."""


class InvalidResponse(APIError):
    """A 2xx answer whose body does not have the documented shape."""


class NetworkError(APIError):
    """The server could not be reached, or the connection broke."""
