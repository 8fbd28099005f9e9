"""What the user must approve on the device, and the callback that decides.

See docs/protocol.md, "Approvals".

The Ledger Sync app asks for approval on three occasions: a login (GET_SEED_ID), every
AddMember and every CloseStream; Seed, Derive and PublishKey are silent. A software device
asks an :data:`Approver` instead of a screen; a hardware device asks its user, and the host
can only be told (:data:`PromptListener`) so that it can say "look at your device".

The approver is a plain synchronous callable: it stands for a person pressing a button,
tests pass a lambda and the CLI a console prompt. It runs on the caller's thread (inside the
event loop for the asyncio devices), which is fine for user-driven operations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class ApprovalKind(Enum):
    LOGIN = "login"
    ADD_MEMBER = "add-member"
    CLOSE_STREAM = "close-stream"


#: The app's own wording (app-ledger-sync ``src/ui``), so a software prompt reads the same.
PROMPTS = {
    ApprovalKind.LOGIN: "Connect with Ledger Sync?",
    ApprovalKind.ADD_MEMBER: "Turn on sync for this phone or computer?",
    ApprovalKind.CLOSE_STREAM: "Remove phone or computer from Ledger Sync?",
}


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    kind: ApprovalKind
    #: LOGIN: the host named in the challenge. ADD_MEMBER: the member's name.
    detail: str | None = None
    #: ADD_MEMBER: the member's public key.
    member: bytes | None = None

    @property
    def prompt(self) -> str:
        return PROMPTS[self.kind]

    def describe(self) -> str:
        """One line for a console: the app's question and what it is about."""
        parts = [self.prompt]
        if self.detail is not None:
            parts.append(f"({self.detail})")
        if self.member is not None:
            parts.append(f"member {self.member.hex()}")
        return " ".join(parts)


Approver = Callable[[ApprovalRequest], bool]
"""Decides a request on a software device: True approves, False refuses."""

PromptListener = Callable[[ApprovalRequest], None]
"""Told, before a hardware device shows a request, so the host can point the user at it."""


def approve_all(request: ApprovalRequest) -> bool:
    """An approver that says yes to everything (tests, demos, unattended software devices)."""
    return True


def refuse_all(request: ApprovalRequest) -> bool:
    return False
