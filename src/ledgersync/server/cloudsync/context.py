"""The Cloud Sync API's dependencies, bundled once at start and passed to its functions."""

from __future__ import annotations

from dataclasses import dataclass

from ..broker import CLOUDSYNC_CHANNEL, Broker
from ..clock import Clock
from ..config import ServerConfig
from ..metrics import Metrics
from ..storage import DocumentStore
from ..tokens import CLOUD_SYNC_AUDIENCE, TokenService, VerifiedTokens
from .notifications import NotificationHub
from .versions import VersionCache


@dataclass(frozen=True)
class CloudSync:
    config: ServerConfig
    store: DocumentStore
    tokens: VerifiedTokens
    clock: Clock
    metrics: Metrics
    hub: NotificationHub
    versions: VersionCache
    broker: Broker

    @classmethod
    def build(
        cls,
        config: ServerConfig,
        *,
        store: DocumentStore,
        tokens: TokenService,
        broker: Broker,
        clock: Clock,
        metrics: Metrics,
    ) -> CloudSync:
        hub = NotificationHub(
            broker=broker,
            store=store,
            tokens=tokens,
            clock=clock,
            metrics=metrics,
            ping_interval=config.cloudsync_ping_interval,
            auth_timeout=config.cloudsync_auth_timeout,
            max_subscribers=config.cloudsync_max_subscribers,
        )
        database = store.database
        # SQLite: no broker between processes; the cache holds only while no other process
        # uses the file. PostgreSQL: while the broker receives the other processes' changes.
        versions = VersionCache(
            sole_process=database.sole_process if database.dialect == "sqlite" else None
        )
        broker.subscribe_ordered(CLOUDSYNC_CHANNEL, versions.on_change)
        broker.on_continuity(versions.on_continuity)
        return cls(
            config,
            store,
            VerifiedTokens(tokens, clock, audience=CLOUD_SYNC_AUDIENCE),
            clock,
            metrics,
            hub,
            versions,
            broker,
        )


class BrokerFeed:
    """The storage's announcements of changes (:mod:`~..storage.changes`) on the broker's
    Cloud Sync channel: sent with the transaction to the other processes, and once committed
    to this process's handlers (subscribers, version cache)."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def in_transaction(self, message: str) -> tuple[str, str] | None:
        return self._broker.transactional(CLOUDSYNC_CHANNEL, message)

    def committed(self, message: str) -> None:
        self._broker.deliver_local(CLOUDSYNC_CHANNEL, message)

    async def received(self, notifications: list[tuple[str, str]]) -> None:
        await self._broker.received(notifications)
