"""Fleet-wide limits: two limiters (two replicas) share one client's GCRA in the machine's
Redis; with Redis unreachable each limits on its own, says so once, counts it, and goes back to
Redis when it answers again."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from app.edge.rate_limit import RateLimiter
from app.edge.redis_rate_limit import RedisRateLimiter
from app.errors import RateLimited
from app.metrics import Metrics
from tests.live_server import free_port
from tests.redis_server import OwnRedis


def _limiter(
    url: str, prefix: str, *, rate: float, burst: int, metrics: Metrics | None = None
) -> RedisRateLimiter:
    return RedisRateLimiter(
        url,
        RateLimiter(rate, burst),
        metrics=metrics or Metrics(),
        key_prefix=prefix,
        timeout_s=0.2,
        retry_s=0.3,
    )


async def _admitted(limiter: RedisRateLimiter, client: str, n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            await limiter.acquire(client)
            ok += 1
        except RateLimited:
            pass
    return ok


def _value(metrics: Metrics, family: str) -> float:
    value = metrics.registry.get_sample_value(family)
    assert value is not None, family
    return value


def test_two_replicas_share_one_burst_then_429(redis_url: str, key_prefix: str) -> None:
    async def run() -> None:
        a = _limiter(redis_url, key_prefix, rate=0.5, burst=4)
        b = _limiter(redis_url, key_prefix, rate=0.5, burst=4)
        # Alternating replicas: the burst of 4 is the fleet's, not 4 per replica.
        results = []
        for i in range(8):
            try:
                await (a if i % 2 == 0 else b).acquire("chat")
                results.append(True)
            except RateLimited as exc:
                results.append(False)
                assert exc.retry_after_s == 2  # one request per 2 s at 0.5/s
        assert results == [True] * 4 + [False] * 4
        # Another client has its own allowance.
        assert await _admitted(b, "other", 4) == 4
        await a.aclose()
        await b.aclose()

    asyncio.run(run())


def test_the_shared_allowance_refills_at_the_rate(redis_url: str, key_prefix: str) -> None:
    async def run() -> None:
        a = _limiter(redis_url, key_prefix, rate=20, burst=1)
        b = _limiter(redis_url, key_prefix, rate=20, burst=1)
        assert await _admitted(a, "c", 3) == 1
        assert await _admitted(b, "c", 3) == 0
        await asyncio.sleep(0.06)  # a bit more than 1/20 s: one more request
        assert await _admitted(b, "c", 3) == 1
        assert await _admitted(a, "c", 1) == 0
        await a.aclose()
        await b.aclose()

    asyncio.run(run())


def test_unlimited_clients_never_reach_redis() -> None:
    async def run() -> None:
        # A closed port: a client with rate 0 is admitted without a Redis call or a fallback.
        metrics = Metrics()
        limiter = RedisRateLimiter(
            f"redis://127.0.0.1:{free_port()}/0",
            RateLimiter(1.0, 1, per_client={"bulk": 0.0}),
            metrics=metrics,
        )
        assert await _admitted(limiter, "bulk", 100) == 100
        assert _value(metrics, "textcls_rate_limit_local_fallbacks_total") == 0
        assert _value(metrics, "textcls_rate_limit_redis_up") == 1

    asyncio.run(run())


def test_redis_unreachable_limits_locally_logs_once_and_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run() -> None:
        metrics = Metrics()
        limiter = _limiter(
            f"redis://127.0.0.1:{free_port()}/0", "p:", rate=1.0, burst=3, metrics=metrics
        )
        with caplog.at_level(logging.WARNING, "app.edge.redis_rate_limit"):
            assert await _admitted(limiter, "chat", 10) == 3  # the local bucket's burst
        assert [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(caplog.records) == 1
        assert _value(metrics, "textcls_rate_limit_local_fallbacks_total") == 10
        assert _value(metrics, "textcls_rate_limit_redis_up") == 0

    asyncio.run(run())


def test_back_to_redis_when_it_answers_again(
    own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        metrics = Metrics()
        a = _limiter(own_redis.url, "p:", rate=0.5, burst=2, metrics=metrics)
        b = _limiter(own_redis.url, "p:", rate=0.5, burst=2)
        assert await _admitted(a, "c", 1) == 1
        own_redis.stop()
        with caplog.at_level(logging.WARNING, "app.edge.redis_rate_limit"):
            # Local buckets: a's has 2 tokens of its own, whatever Redis counted.
            assert await _admitted(a, "c", 5) == 2
            assert _value(metrics, "textcls_rate_limit_redis_up") == 0
            own_redis.start()  # empty: the shared allowance starts again
            await asyncio.sleep(0.35)  # past retry_s
            assert await _admitted(a, "c", 1) == 1
            assert _value(metrics, "textcls_rate_limit_redis_up") == 1
            # Shared again: b sees what a used.
            assert await _admitted(b, "c", 5) == 1
        messages = [r.getMessage() for r in caplog.records]
        assert sum("unreachable" in m for m in messages) == 1
        assert sum("Redis is back" in m for m in messages) == 1
        await a.aclose()
        await b.aclose()

    asyncio.run(run())


def test_a_hung_redis_costs_at_most_the_timeout() -> None:
    """A listener that never answers (a stopped Redis' port on a wedged host): the request is
    limited locally within the timeout, and later ones skip Redis until ``retry_s`` passes."""
    import socket

    async def run() -> None:
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            port = silent.getsockname()[1]
            limiter = _limiter(f"redis://127.0.0.1:{port}/0", "p:", rate=1.0, burst=5)
            started = time.monotonic()
            await limiter.acquire("c")
            assert time.monotonic() - started < 1.0
            started = time.monotonic()
            assert await _admitted(limiter, "c", 10) == 4
            assert time.monotonic() - started < 0.1

    asyncio.run(run())
