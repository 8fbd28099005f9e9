"""Member permissions (docs/protocol.md, "Permissions").

The wire value is a raw unsigned 32-bit integer. Two readings of its bits exist: LKRP v1
(Ledger Live's resolver) and LKRPv2 "restricted permissions" (the newer SDK). Ledger Live only
ever writes OWNER, on which both agree.
"""

from __future__ import annotations

from enum import Enum

OWNER = 0xFFFFFFFF
NO_PERMISSION = 0

# LKRP v1 bits. REMOVE_MEMBER & co. are typos upstream (0x16/0x32/0x64) and deliberately absent.
KEY_READER = 0x01
KEY_CREATOR = 0x02
KEY_REVOKER = 0x04
ADD_MEMBER = 0x08

# LKRPv2 bits.
CAN_ENCRYPT = 0x01
CAN_DERIVE = 0x02
CAN_ADD_BLOCK = 0x04


class PermissionRules(Enum):
    """Which meaning of the bits a resolver enforces."""

    V1 = "v1"
    V2 = "v2"


_V1_NAMES = (
    (KEY_READER, "KEY_READER"),
    (KEY_CREATOR, "KEY_CREATOR"),
    (KEY_REVOKER, "KEY_REVOKER"),
    (ADD_MEMBER, "ADD_MEMBER"),
)
_V2_NAMES = (
    (CAN_ENCRYPT, "CAN_ENCRYPT"),
    (CAN_DERIVE, "CAN_DERIVE"),
    (CAN_ADD_BLOCK, "CAN_ADD_BLOCK"),
)


def _names(value: int, table: tuple[tuple[int, str], ...]) -> list[str]:
    if value == OWNER:
        return ["OWNER"]
    return [name for bit, name in table if value & bit]


def v1_names(value: int) -> list[str]:
    return _names(value, _V1_NAMES)


def v2_names(value: int) -> list[str]:
    return _names(value, _V2_NAMES)


def describe(value: int) -> str:
    """``0xffffffff (OWNER)``, ``0x00000008 (v1: ADD_MEMBER; v2: none)``…"""
    if value == OWNER:
        return "0xffffffff (OWNER)"
    v1 = ", ".join(v1_names(value)) or "none"
    v2 = ", ".join(v2_names(value)) or "none"
    return f"0x{value:08x} (v1: {v1}; v2: {v2})"
