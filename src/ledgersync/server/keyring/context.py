"""The key-ring API's dependencies, bundled once at start and passed to its functions."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...protocol import KeyPair, ResolvedStream
from ..clock import Clock
from ..config import ServerConfig
from ..metrics import Metrics
from ..ratelimit import RateLimiter
from ..storage import KeyRingStore
from ..storage.keyring import StreamStateCache
from ..tokens import TRUSTCHAIN_AUDIENCE, TokenService, VerifiedTokens
from .qr import QrRelay
from .qr_shared import SharedRooms
from .validation import Limits


@dataclass(frozen=True)
class KeyRing:
    config: ServerConfig
    store: KeyRingStore
    tokens: TokenService
    #: ``tokens.verify`` for the Key Ring's audience, remembering the tokens found valid.
    verified_tokens: VerifiedTokens
    relying_party: KeyPair
    clock: Clock
    metrics: Metrics
    limits: Limits
    challenge_limiter: RateLimiter
    authenticate_limiter: RateLimiter
    relay: QrRelay
    #: Streams resolved at their committed state, for appends (exact: see the class), kept
    #: without their decoded blocks (``trustchains.resolution_state``).
    resolved_streams: StreamStateCache[ResolvedStream] = field(default_factory=StreamStateCache)

    @classmethod
    def build(
        cls,
        config: ServerConfig,
        *,
        store: KeyRingStore,
        tokens: TokenService,
        relying_party: KeyPair,
        clock: Clock,
        metrics: Metrics,
        shared_rooms: SharedRooms | None = None,
    ) -> KeyRing:
        def limiter() -> RateLimiter:
            return RateLimiter(
                per_minute=config.rate_limit_per_minute,
                burst=config.rate_limit_burst,
                clock=clock,
            )

        return cls(
            config=config,
            store=store,
            tokens=tokens,
            verified_tokens=VerifiedTokens(tokens, clock, audience=TRUSTCHAIN_AUDIENCE),
            relying_party=relying_party,
            clock=clock,
            metrics=metrics,
            limits=Limits(
                max_blocks_per_request=config.max_blocks_per_request,
                max_stream_blocks=config.max_stream_blocks,
                max_streams_per_trustchain=config.max_streams_per_trustchain,
            ),
            challenge_limiter=limiter(),
            authenticate_limiter=limiter(),
            relay=QrRelay(
                idle_timeout=config.qr_idle_timeout,
                max_rooms=config.qr_max_rooms,
                metrics=metrics,
                shared=shared_rooms,
            ),
        )
