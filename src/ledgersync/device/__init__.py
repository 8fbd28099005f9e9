"""The device layer: one Device interface, a software device, the APDU protocol to the app.

* :class:`Device` is what the SDK uses: the seed-id key, logins, signing blocks, reading keys.
* :class:`SoftwareDevice` is a Ledger Sync app seeded from a BIP39 phrase, in process.
* :class:`ApduDevice` speaks the app's APDUs over a :class:`Transport`: the in-process
  :class:`Emulator`, Speculos, or a real device over USB (``ledgersync[hid]``).
* :func:`open_device` opens what a ``--device`` value names (``software:NAME``,
  ``speculos:HOST:PORT``, ``hid``); profiles of software devices live in
  :class:`ProfileStore`.

Heavy or optional pieces (USB) load only when used.
"""

from .approval import ApprovalKind, ApprovalRequest, Approver, PromptListener, approve_all
from .client import ApduDevice
from .emulator import Emulator
from .errors import (
    ApduError,
    AppNotOpenError,
    BadStateError,
    ChallengeRejectedError,
    DeviceError,
    DeviceLockedError,
    DeviceNotFoundError,
    DeviceResponseError,
    ParserStateError,
    RequestError,
    StreamClosedError,
    StreamRejectedError,
    TransportError,
    TransportUnavailableError,
    UnsupportedOperationError,
    UserRefusedError,
    WrongSeedError,
)
from .hid import HidTransport
from .identity import DeviceIdentity, InvalidMnemonicError, generate_mnemonic
from .interface import Device
from .profiles import DeviceProfile, ProfileError, ProfileStore, default_home
from .requests import AddMemberRequest, BlockRequest, CloseRequest, DeriveRequest, SeedRequest
from .software import SoftwareDevice
from .spec import (
    DeviceSpec,
    DeviceSpecError,
    HidSpec,
    SoftwareSpec,
    SpeculosSpec,
    open_device,
    parse_device_spec,
)
from .speculos import SpeculosTransport, serve_emulator
from .transport import InProcessTransport, Transport

__all__ = [
    "AddMemberRequest",
    "ApduDevice",
    "ApduError",
    "AppNotOpenError",
    "ApprovalKind",
    "ApprovalRequest",
    "Approver",
    "BadStateError",
    "BlockRequest",
    "ChallengeRejectedError",
    "CloseRequest",
    "DeriveRequest",
    "Device",
    "DeviceError",
    "DeviceIdentity",
    "DeviceLockedError",
    "DeviceNotFoundError",
    "DeviceProfile",
    "DeviceResponseError",
    "DeviceSpec",
    "DeviceSpecError",
    "Emulator",
    "HidSpec",
    "HidTransport",
    "InProcessTransport",
    "InvalidMnemonicError",
    "ParserStateError",
    "ProfileError",
    "ProfileStore",
    "PromptListener",
    "RequestError",
    "SeedRequest",
    "SoftwareDevice",
    "SoftwareSpec",
    "SpeculosSpec",
    "SpeculosTransport",
    "StreamClosedError",
    "StreamRejectedError",
    "Transport",
    "TransportError",
    "TransportUnavailableError",
    "UnsupportedOperationError",
    "UserRefusedError",
    "WrongSeedError",
    "approve_all",
    "default_home",
    "generate_mnemonic",
    "open_device",
    "parse_device_spec",
    "serve_emulator",
]
