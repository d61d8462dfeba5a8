"""Token buckets: burst, refill, Retry-After, per-client rates and the client cap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import ConfigError, Settings
from app.edge.auth import KeyStore, parse_key_pairs
from app.edge.errors import headers_of, status_of
from app.edge.rate_limit import RateLimiter
from app.errors import RateLimited
from app.main import create_app
from tests.app.live_service import make_settings, wait_ready


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_429_with_whole_second_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(default_rate=0.5, burst=3, clock=clock)
    for _ in range(3):
        limiter.check("chat")
    with pytest.raises(RateLimited) as info:
        limiter.check("chat")
    # One token takes 2 s at 0.5/s.
    assert status_of(info.value) == 429
    assert headers_of(info.value) == {"Retry-After": "2"}
    assert "chat" in info.value.detail


def test_retry_after_is_at_least_one_second_even_when_nearly_refilled() -> None:
    clock = FakeClock()
    limiter = RateLimiter(default_rate=100.0, burst=1, clock=clock)
    limiter.check("a")
    clock.now += 0.005  # half a token back
    with pytest.raises(RateLimited) as info:
        limiter.check("a")
    assert info.value.retry_after_s == 1


def test_tokens_refill_at_the_rate_and_cap_at_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(default_rate=2.0, burst=2, clock=clock)
    limiter.check("a")
    limiter.check("a")
    clock.now += 0.5  # one token back
    limiter.check("a")
    with pytest.raises(RateLimited):
        limiter.check("a")
    clock.now += 3600  # a long idle refills to the burst, no further
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited):
        limiter.check("a")


def test_clients_have_separate_buckets_and_own_rates() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        default_rate=1.0, burst=1, per_client={"bulk": 0.0, "slow": 0.1}, clock=clock
    )
    limiter.check("a")
    limiter.check("b")  # a's empty bucket is not b's
    with pytest.raises(RateLimited):
        limiter.check("a")
    for _ in range(1000):
        limiter.check("bulk")  # 0 is unlimited for that client
    limiter.check("slow")
    clock.now += 1.0
    with pytest.raises(RateLimited) as info:
        limiter.check("slow")
    assert info.value.retry_after_s == 9


def test_zero_default_rate_is_off() -> None:
    limiter = RateLimiter(default_rate=0.0, burst=1, clock=FakeClock())
    for _ in range(100):
        limiter.check("a")


def test_least_recently_seen_clients_are_forgotten_beyond_the_cap() -> None:
    clock = FakeClock()
    limiter = RateLimiter(default_rate=1.0, burst=1, clock=clock, max_clients=2)
    limiter.check("a")
    limiter.check("b")
    limiter.check("c")  # forgets a
    assert len(limiter._buckets) == 2
    limiter.check("a")  # a fresh bucket, not a 429
    with pytest.raises(RateLimited):
        limiter.check("c")


def test_per_client_rates_must_name_configured_clients() -> None:
    keys = KeyStore(parse_key_pairs("chat:k1"))
    settings = Settings(rate_limits={"chta": 5.0})
    with pytest.raises(ConfigError, match="chta"):
        RateLimiter.from_settings(settings, keys)
    ok = RateLimiter.from_settings(Settings(rate_limits={"chat": 5.0}), keys)
    assert ok.rate_for("chat") == 5.0


@pytest.fixture(scope="module")
def limited(
    tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("rate"),
        tiny_model_repo,
        api_keys="chat:chat-key,bulk:bulk-key",
        rate_limit_per_s=0.01,  # one token per 100 s: the test never sees a refill
        rate_limit_burst=2,
        rate_limits={"bulk": 0},
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


def test_over_the_limit_is_429_with_retry_after(limited: TestClient) -> None:
    chat = {"X-API-Key": "chat-key"}
    assert limited.post("/classify", json={"text": "card lost"}, headers=chat).status_code == 200
    assert limited.get("/models", headers=chat).status_code == 200
    r = limited.post("/classify", json={"text": "card lost"}, headers=chat)
    assert r.status_code == 429
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= 100
    assert "rate limit" in r.json()["detail"]
    # Other clients, per-client overrides and the probes are not affected.
    bulk = {"X-API-Key": "bulk-key"}
    for _ in range(5):
        assert limited.get("/models", headers=bulk).status_code == 200
    for _ in range(5):
        assert limited.get("/healthz").status_code == 200
    # A refused request costs no token and is not let through by a bad key either.
    assert limited.get("/models", headers={"X-API-Key": "nope"}).status_code == 401


def test_openapi_declares_the_429(limited: TestClient) -> None:
    doc = limited.get("/openapi.json").json()
    declared = doc["paths"]["/classify"]["post"]["responses"]["429"]
    assert "Retry-After" in declared["headers"]
