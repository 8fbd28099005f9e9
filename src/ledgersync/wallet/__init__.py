"""The wallet: one Ledger Sync instance's data, merged without loss, synced live.

* :class:`InstanceStore` / :class:`InstanceRecord`: instances on disk (``instances``);
* :class:`Wallet`: sync rounds, the watch loop, activation, pairing, members, deactivation
  (``session``);
* the synced document and its modules (``document``), the three-way merge (``merge``), local
  edits (``edits``), account descriptors (``accounts``), BIP-329 labels (``labels``) and the
  exports (``exports``).
"""

from .accounts import AccountId, account_descriptor, parse_account_id
from .document import LABEL_TYPES, LABELS_KEY, MODULES, Document, quarantined
from .edits import (
    add_account,
    add_recent_address,
    import_labels,
    label_records,
    remove_account,
    remove_label,
    rename_account,
    set_label,
)
from .errors import (
    AlreadyActivated,
    InstanceBusy,
    InstanceCorrupted,
    InstanceError,
    InstanceExists,
    InstanceNotFound,
    InstancePurged,
    InvalidEdit,
    LabelsFileError,
    MemberSelectionError,
    ModuleQuarantined,
    NoInstanceSelected,
    NotActivated,
    ServerUnreachable,
    SyncFailed,
    WalletError,
)
from .exports import CSV_COLUMNS, accounts_with_names, to_bip329, to_csv, to_json
from .instances import INSTANCE_ENV, InstanceRecord, InstanceStore, Purge
from .labels import read_bip329, write_bip329
from .merge import Change, Conflict, MergeResult, changes, merge
from .session import ActivationReport, Member, SyncReport, Wallet

__all__ = [
    "CSV_COLUMNS",
    "INSTANCE_ENV",
    "LABELS_KEY",
    "LABEL_TYPES",
    "MODULES",
    "AccountId",
    "ActivationReport",
    "AlreadyActivated",
    "Change",
    "Conflict",
    "Document",
    "InstanceBusy",
    "InstanceCorrupted",
    "InstanceError",
    "InstanceExists",
    "InstanceNotFound",
    "InstancePurged",
    "InstanceRecord",
    "InstanceStore",
    "InvalidEdit",
    "LabelsFileError",
    "Member",
    "MemberSelectionError",
    "MergeResult",
    "ModuleQuarantined",
    "NoInstanceSelected",
    "NotActivated",
    "Purge",
    "ServerUnreachable",
    "SyncFailed",
    "SyncReport",
    "Wallet",
    "WalletError",
    "account_descriptor",
    "accounts_with_names",
    "add_account",
    "add_recent_address",
    "changes",
    "import_labels",
    "label_records",
    "merge",
    "parse_account_id",
    "quarantined",
    "read_bip329",
    "remove_account",
    "remove_label",
    "rename_account",
    "set_label",
    "to_bip329",
    "to_csv",
    "to_json",
    "write_bip329",
]
