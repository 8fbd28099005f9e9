"""Per-client token buckets, kept in memory (per process).

A bucket holds ``burst`` tokens and refills at ``per_minute`` tokens a minute; a request takes
one token or is refused with 429 and a ``Retry-After`` header. At most ``max_clients``
buckets are kept: when full, the least recently used one is forgotten (a forgotten client
starts again with a full bucket, which errs on the side of serving).
"""

from __future__ import annotations

import math
from collections import OrderedDict

from .clock import Clock
from .errors import ApiError


class RateLimited(ApiError):
    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            429,
            f"too many requests, retry in {seconds} s",
            headers={"retry-after": str(seconds)},
        )


class RateLimiter:
    def __init__(
        self, *, per_minute: int, burst: int, clock: Clock, max_clients: int = 100_000
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, client: str) -> None:
        """Take one token for ``client`` or raise :class:`RateLimited`."""
        now = self._clock()
        tokens, updated = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - updated) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            raise RateLimited((1.0 - tokens) / self.rate)
        self._buckets[client] = (tokens - 1.0, now)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
