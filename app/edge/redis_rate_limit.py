"""Per-client limits shared by every replica and worker: GCRA in one Redis script per request.

GCRA (the generic cell rate algorithm) keeps one number per client, its theoretical arrival
time (TAT), and behaves as the local token bucket does: ``burst`` requests at once, then one
per ``1/rate`` seconds. The script reads Redis' own clock, so replicas whose clocks differ
still agree. When Redis cannot be reached the request is limited by this process's own
buckets instead (never refused for it, never a 5xx); Redis is tried again ``retry_s`` later.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from app.edge.rate_limit import RateLimiter
from app.errors import RateLimited
from app.metrics import Metrics, name

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# KEYS[1]: the client's key. ARGV[1]: emission interval (microseconds), ARGV[2]: burst.
# Returns 0 when the request is admitted, else the microseconds until it would be.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return math.ceil(allow_at - now)
end
redis.call('SET', KEYS[1], string.format('%d', new_tat),
           'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
"""


class RedisRateLimiter:
    """The fleet-wide limiter: Redis decides, ``local`` stands in while Redis is away."""

    def __init__(
        self,
        url: str,
        local: RateLimiter,
        *,
        metrics: Metrics,
        key_prefix: str = "textcls:",
        timeout_s: float = 0.1,
        retry_s: float = 1.0,
    ) -> None:
        self.url = url
        self.local = local
        self.enabled = local.enabled
        self.metrics = metrics
        self.key_prefix = key_prefix
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._redis: Redis | None = None
        self._script: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0  # monotonic time before which Redis is not tried
        self._down = False
        # Made here, so a process without Redis exports neither family.
        self.redis_up = Gauge(
            name("rate_limit_redis_up"),
            "1 while this process's rate limits hold across the fleet (Redis answers), 0 "
            "while it limits on its own.",
            registry=metrics.registry,
            multiprocess_mode="livemin",
        )
        self.local_fallbacks = Counter(
            name("rate_limit_local_fallbacks"),
            "Requests limited by this process's own buckets because Redis was unreachable.",
            registry=metrics.registry,
        )
        self.redis_up.set(1)

    def _client(self) -> Any:
        """The Redis script bound to a client of the running loop (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._redis is None or self._loop is not loop:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry_on_timeout=False,
            )
            self._script = self._redis.register_script(GCRA_SCRIPT)
            self._loop = loop
        return self._script

    async def acquire(self, client: str) -> None:
        """Admit one request of ``client`` or raise RateLimited with a whole-second
        Retry-After, as the fleet's shared bucket (or, with Redis away, the local one) says."""
        rate = self.local.rate_for(client)
        if rate <= 0:
            return
        if self._down and time.monotonic() < self._down_until:
            self._limit_locally(client)
            return
        from redis.exceptions import RedisError

        interval_us = max(1, round(1_000_000 / rate))
        try:
            # The socket timeouts bound each attempt; this bounds the call, retries included.
            async with asyncio.timeout(self.timeout_s):
                wait_us = await self._client()(
                    keys=[f"{self.key_prefix}rl:{client}"], args=[interval_us, self.local.burst]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._went_down(exc)
            self._limit_locally(client)
            return
        if self._down:
            self._down = False
            self.redis_up.set(1)
            log.warning("Redis is back: rate limits hold across replicas again")
        if wait_us:
            raise RateLimited(client, max(1, math.ceil(int(wait_us) / 1_000_000)))

    def _went_down(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.retry_s
        if not self._down:
            self._down = True
            self.redis_up.set(0)
            log.warning(
                "Redis unreachable (%s: %s): rate limits are per replica until it is back",
                type(exc).__name__,
                exc,
            )

    def _limit_locally(self, client: str) -> None:
        self.local_fallbacks.inc()
        self.local.check(client)

    async def aclose(self) -> None:
        """Close the connection pool (on the loop that opened it)."""
        if self._redis is not None and self._loop is asyncio.get_running_loop():
            await self._redis.aclose()
        self._redis = None
