"""The Cloud Sync API's dependencies, bundled once at start and passed to its functions."""

from __future__ import annotations

from dataclasses import dataclass

from ..broker import Broker
from ..clock import Clock
from ..config import ServerConfig
from ..metrics import Metrics
from ..storage import DocumentStore
from ..tokens import TokenService
from .access import VerifiedTokens
from .notifications import NotificationHub


@dataclass(frozen=True)
class CloudSync:
    config: ServerConfig
    store: DocumentStore
    tokens: VerifiedTokens
    clock: Clock
    metrics: Metrics
    hub: NotificationHub

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
        return cls(config, store, VerifiedTokens(tokens, clock), clock, metrics, hub)
