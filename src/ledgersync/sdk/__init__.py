"""The Python SDK: Ledger Live's Ledger Sync flows against any compatible server.

* :class:`TrustchainSDK`: member credentials, create/join/restore, members, key rotation,
  destroy, user-data encryption (``trustchain``);
* :class:`CloudSyncSDK`: pull/push/destroy of the encrypted document, notifications
  (``cloudsync``);
* QR pairing as host or candidate (``qr``);
* blocking facades for scripts (``sync``);
* Ledger's error taxonomy (``errors``).
"""

from .auth import AuthPolicy
from .cloudsync import (
    CloudSyncLifecycle,
    CloudSyncSDK,
    DeletedData,
    NewData,
    PullResult,
    PushedData,
    PushResult,
    UpdateEvent,
)
from .cloudsync_api import Status
from .credentials import (
    MemberCredentials,
    Trustchain,
    TrustchainMember,
    TrustchainResult,
    TrustchainResultType,
)
from .device import DeviceCallbacks
from .errors import (
    APIError,
    CloudSyncLocked,
    CloudSyncOutOfSync,
    CloudSyncPayloadError,
    DecryptionError,
    DeviceFailure,
    InvalidArgument,
    InvalidDigits,
    InvalidDigitsError,
    InvalidEncryptionKeyError,
    InvalidResponse,
    InvalidTrustchainData,
    LedgerAPI4xx,
    LedgerAPI5xx,
    LedgerSyncError,
    MemberNotFound,
    NetworkError,
    NoTrustchainInitialized,
    QRCodeProtocolError,
    QRCodeWSClosed,
    RemoveSelfRefused,
    ScannedInvalidQrCode,
    ScannedNewImportQrCode,
    ScannedOldImportQrCode,
    TrustchainAlreadyInitialized,
    TrustchainAlreadyInitializedWithOtherSeed,
    TrustchainEjected,
    TrustchainNotAllowed,
    TrustchainNotFound,
    TrustchainOutdated,
    UserRefusedOnDevice,
)
from .http import HTTPOptions
from .qr import (
    DigitsRequest,
    create_qr_code_candidate_instance,
    create_qr_code_host_instance,
    pair_as_candidate,
    pair_as_host,
)
from .sync import SyncCloudSyncSDK, SyncTrustchainSDK
from .trustchain import TrustchainLifecycle, TrustchainSDK

__all__ = [
    "APIError",
    "AuthPolicy",
    "CloudSyncLifecycle",
    "CloudSyncLocked",
    "CloudSyncOutOfSync",
    "CloudSyncPayloadError",
    "CloudSyncSDK",
    "DecryptionError",
    "DeletedData",
    "DeviceCallbacks",
    "DeviceFailure",
    "DigitsRequest",
    "HTTPOptions",
    "InvalidArgument",
    "InvalidDigits",
    "InvalidDigitsError",
    "InvalidEncryptionKeyError",
    "InvalidResponse",
    "InvalidTrustchainData",
    "LedgerAPI4xx",
    "LedgerAPI5xx",
    "LedgerSyncError",
    "MemberCredentials",
    "MemberNotFound",
    "NetworkError",
    "NewData",
    "NoTrustchainInitialized",
    "PullResult",
    "PushResult",
    "PushedData",
    "QRCodeProtocolError",
    "QRCodeWSClosed",
    "RemoveSelfRefused",
    "ScannedInvalidQrCode",
    "ScannedNewImportQrCode",
    "ScannedOldImportQrCode",
    "Status",
    "SyncCloudSyncSDK",
    "SyncTrustchainSDK",
    "Trustchain",
    "TrustchainAlreadyInitialized",
    "TrustchainAlreadyInitializedWithOtherSeed",
    "TrustchainEjected",
    "TrustchainLifecycle",
    "TrustchainMember",
    "TrustchainNotAllowed",
    "TrustchainNotFound",
    "TrustchainOutdated",
    "TrustchainResult",
    "TrustchainResultType",
    "TrustchainSDK",
    "UpdateEvent",
    "UserRefusedOnDevice",
    "create_qr_code_candidate_instance",
    "create_qr_code_host_instance",
    "pair_as_candidate",
    "pair_as_host",
]
