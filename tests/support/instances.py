"""SDK instances for end-to-end tests: what one Ledger Live install holds (an SDK, its
credentials, its trustchain), and moving the server's clock past a deadline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledgersync.sdk.credentials import MemberCredentials, Trustchain
from ledgersync.sdk.trustchain import TrustchainSDK

from .servers import RunningServer


def move_past(server: RunningServer, unix_time: float) -> None:
    """Move the server's clock just past ``unix_time`` (for example a token's ``exp``)."""
    server.clock.advance(max(0.0, unix_time - server.clock()) + 1)


@dataclass
class Instance:
    """One Ledger Live install: its SDK, its member key, and the trustchain it knows."""

    sdk: TrustchainSDK
    credentials: MemberCredentials
    trustchain: Trustchain | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.sdk.name

    @property
    def tc(self) -> Trustchain:
        assert self.trustchain is not None, f"{self.name} has no trustchain"
        return self.trustchain


#: ``instances("Linux abcde")`` → a new instance with fresh member credentials.
InstanceFactory = Callable[..., Instance]
