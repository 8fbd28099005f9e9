"""A populated server for the security suite (and the durability test): one trustchain, its
device and one member, both logged in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from ledgersync.protocol import KeyPair
from ledgersync.testing import LocalServer

from .cloudsync import Member, new_member
from .keyring import Session
from .servers import RunningServer

#: Small enough that "too large" probes stay fast, large enough for every legitimate probe.
SWEEP_LIMITS = {"cloudsync_max_payload_bytes": 256 * 1024}

ServerT = TypeVar("ServerT", RunningServer, LocalServer)


@dataclass
class World(Member, Generic[ServerT]):
    """A :class:`~.cloudsync.Member` of a trustchain on ``server``, whose device is logged in
    too: what the attacks of the security suite aim at."""

    server: ServerT

    @property
    def member_key(self) -> KeyPair:
        return self.key

    @property
    def member(self) -> Session:
        return self.session

    def document(self, **extra: str) -> list[tuple[str, str]]:
        return [("id", self.trustchain_id), ("path", self.path), *extra.items()]


def populate(server: ServerT) -> World[ServerT]:
    member = new_member(server.client())
    return World(
        member.client, member.trustchain, member.device, member.key, member.session, server
    )
