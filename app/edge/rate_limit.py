"""Per-client token buckets: over the rate, a request gets 429 with ``Retry-After``."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from app.config import ConfigError, Settings
from app.edge.auth import KeyStore
from app.edge.openapi import ErrorMessage
from app.errors import RateLimited

if TYPE_CHECKING:
    from app.metrics import Metrics

# These buckets are per process: with N workers or replicas a client may get up to N times the
# rate, unless TEXTCLS_REDIS_URL makes the limits fleet-wide (app.edge.redis_rate_limit).
MAX_TRACKED_CLIENTS = 10_000


class Limiter(Protocol):
    """What ``authorize`` and the gRPC server call: admit one request or raise RateLimited."""

    enabled: bool  # False when no client has a limit: callers skip ``acquire`` altogether

    async def acquire(self, client: str) -> None: ...

    async def aclose(self) -> None: ...


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; each request takes one."""

    __slots__ = ("rate", "capacity", "tokens", "updated")

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self.updated = now

    def take(self, now: float) -> float:
        """0 if a token was taken, else the seconds until one will be there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per client name, created on first use.

    Runs only on the event loop (from ``app.edge.authorize``), so it needs no lock. The
    least recently seen clients are forgotten beyond ``max_clients`` (only open services,
    keyed by peer address, can have that many); a forgotten client starts with a full bucket.
    """

    def __init__(
        self,
        default_rate: float,
        burst: int,
        *,
        per_client: dict[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        self.default_rate = default_rate
        self.burst = burst
        self.per_client = dict(per_client or {})
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.enabled = default_rate > 0 or any(r > 0 for r in self.per_client.values())

    @classmethod
    def from_settings(cls, settings: Settings, keys: KeyStore) -> RateLimiter:
        unknown = sorted(set(settings.rate_limits) - keys.names)
        if unknown:
            raise ConfigError(
                f"TEXTCLS_RATE_LIMITS names clients with no API key: {', '.join(unknown)}"
            )
        return cls(
            settings.rate_limit_per_s, settings.rate_limit_burst, per_client=settings.rate_limits
        )

    def rate_for(self, client: str) -> float:
        return self.per_client.get(client, self.default_rate)

    def check(self, client: str) -> None:
        """Take a token for ``client``, or raise RateLimited with a whole-second Retry-After."""
        rate = self.rate_for(client)
        if rate <= 0:
            return
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(rate, self.burst, now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        wait_s = bucket.take(now)
        if wait_s > 0:
            raise RateLimited(client, max(1, math.ceil(wait_s)))

    async def acquire(self, client: str) -> None:
        """``check`` as the ``Limiter`` protocol has it."""
        self.check(client)

    async def aclose(self) -> None:
        """Nothing to close: the buckets are in memory."""


def limiter_from_settings(settings: Settings, keys: KeyStore, metrics: Metrics) -> Limiter:
    """This process's buckets, or with ``TEXTCLS_REDIS_URL`` the fleet's, backed by them."""
    local = RateLimiter.from_settings(settings, keys)
    if settings.redis_url is None:
        return local
    from app.edge.redis_rate_limit import RedisRateLimiter

    return RedisRateLimiter(
        settings.redis_url.get_secret_value(),
        local,
        metrics=metrics,
        key_prefix=settings.redis_key_prefix,
        timeout_s=settings.redis_timeout_ms / 1000,
        retry_s=settings.redis_retry_s,
    )


RATE_LIMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorMessage,
        "description": "Over the client's rate limit; retry after the given seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
}
