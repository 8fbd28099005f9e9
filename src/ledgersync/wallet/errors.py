"""What can go wrong with a wallet instance, each error one sentence a person can act on."""

from __future__ import annotations


class WalletError(Exception):
    """Base class: ``str(error)`` is a complete sentence, safe to show as it is."""


class InstanceError(WalletError):
    """An instance that cannot be created, found, read or written."""


class InstanceNotFound(InstanceError):
    pass


class InstanceExists(InstanceError):
    pass


class InstanceCorrupted(InstanceError):
    """The instance file is unreadable; it is left untouched for inspection."""


class InstanceBusy(InstanceError):
    """Another process holds the instance's lock for longer than we were willing to wait."""


class NoInstanceSelected(InstanceError):
    """Several instances exist (or none) and none was named."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


class NotActivated(WalletError):
    """The instance has no trustchain yet (activate or pair it)."""


class AlreadyActivated(WalletError):
    """The instance already belongs to a trustchain."""


class InvalidEdit(WalletError, ValueError):
    """A local edit with bad input (an account id, a label type, an empty name…)."""


class ModuleQuarantined(InvalidEdit):
    """A local edit to a module whose synced content does not validate."""

    def __init__(self, module: str, reason: str) -> None:
        super().__init__(
            f"the {module!r} data synced from the server is not valid ({reason}); it is kept "
            "as it is and cannot be edited here until another instance fixes it"
        )
        self.module = module
        self.reason = reason


class LabelsFileError(WalletError, ValueError):
    """A BIP-329 file with a bad line: nothing from the file was applied."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}; nothing from the file was applied")
        self.line = line
        self.reason = reason


class MemberSelectionError(WalletError):
    """No member, or several, match what the user typed."""


class ServerUnreachable(WalletError):
    """The server did not answer (down, wrong URL, network)."""


class SyncFailed(WalletError):
    """The server refused an operation, or answered something we cannot use."""


class InstancePurged(WalletError):
    """This instance was removed or its trustchain deleted: its secrets and data are gone.

    ``reason`` is ``"removed"`` (another instance removed this member), ``"deleted"`` (the
    trustchain was deleted by another instance) or ``"deactivated"`` (done here).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
