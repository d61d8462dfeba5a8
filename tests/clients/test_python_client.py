"""textcls-client against a real server: results, request ids, keys, errors, retries."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from textcls_client import (
    AsyncClient,
    Classification,
    Client,
    InvalidInput,
    NotFound,
    Prediction,
    RateLimited,
    RetryPolicy,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
)

from tests.clients.conftest import Served, serve

ENGLISH = "I still have not received my new card"
CHINESE = "我的卡还没有收到，请帮我查一下"
FAST = RetryPolicy(retries=2, backoff_s=0.01, max_backoff_s=0.05, max_wait_s=5)


def raw_classify(url: str, body: dict[str, object]) -> dict[str, object]:
    r = httpx.post(url + "/classify", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_one_text_is_a_prediction_equal_to_classify(server: Served) -> None:
    with Client(server.url) as client:
        p = client.classify(ENGLISH, top_k=2)
    assert isinstance(p, Prediction)
    raw = raw_classify(server.url, {"text": ENGLISH, "top_k": 2})
    first = raw["predictions"][0]  # type: ignore[index]
    assert (p.label, p.confidence, p.fallback) == (
        first["label"],
        first["confidence"],
        first["fallback"],
    )
    assert [(r.label, r.confidence) for r in p.ranking] == [
        (r["label"], r["confidence"]) for r in first["ranking"]
    ]
    assert (p.model, p.version, p.index) == ("example", 1, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", p.request_id)


def test_the_margin_is_sent(server: Served) -> None:
    texts = [ENGLISH, CHINESE]
    with Client(server.url) as client:
        wide = client.classify(texts, threshold=0.0, margin=1.0)
        none = client.classify(texts, threshold=0.0, margin=0.0)
    assert [p.fallback for p in wide] == [True, True]
    assert [p.fallback for p in none] == [False, False]


def test_texts_are_a_classification_in_input_order(server: Served) -> None:
    texts = [ENGLISH, CHINESE, "cancel my order please"]
    with Client(server.url) as client:
        result = client.classify(texts, model="example", version=1, threshold=0.99)
    assert isinstance(result, Classification)
    raw = raw_classify(server.url, {"texts": texts, "threshold": 0.99})
    assert [p.label for p in result] == [p["label"] for p in raw["predictions"]]  # type: ignore[attr-defined]
    assert [p.index for p in result] == [0, 1, 2]
    assert all(p.request_id == result.request_id for p in result)
    assert [p.fallback for p in result] == [p["fallback"] for p in raw["predictions"]]  # type: ignore[attr-defined]
    assert all(p.fallback for p in result if p.confidence < 0.99)
    assert len(result) == 3 and result[1].index == 1


def test_request_id_is_passed_through(server: Served, front: object) -> None:
    with Client(server.url) as client:
        p = client.classify(ENGLISH, request_id="order-42:line-1")
    assert p.request_id == "order-42:line-1"
    assert server.front.posts("/classify")[-1].request_id == "order-42:line-1"


def test_models_and_model(server: Served) -> None:
    with Client(server.url) as client:
        models = client.models()
        one = client.model("example")
        with pytest.raises(NotFound) as info:
            client.model("nope")
    assert [m.name for m in models] == ["example"]
    assert one.ready and one.version == 1 and one.classes and one.device == "cpu"
    assert "nope" in str(info.value.detail)


def test_422_is_not_retried(server: Served, front: object) -> None:
    with Client(server.url, retries=FAST) as client:
        with pytest.raises(InvalidInput) as info:
            client.classify("   ")
    assert info.value.status_code == 422
    assert "empty" in str(info.value.detail)
    assert [s.status for s in server.front.posts("/classify")] == [422]


def test_404_unknown_version_is_not_retried(server: Served, front: object) -> None:
    with Client(server.url, retries=FAST) as client:
        with pytest.raises(NotFound):
            client.classify(ENGLISH, version=7)
    assert [s.status for s in server.front.posts("/classify")] == [404]


def test_503_with_retry_after_is_retried_with_the_same_request_id(
    server: Served, front: object
) -> None:
    server.front.fail_next = 1
    started = time.monotonic()
    with Client(server.url, retries=FAST) as client:
        p = client.classify(ENGLISH)
    assert time.monotonic() - started >= 1.0  # waited the Retry-After: 1, not the backoff
    posts = server.front.posts("/classify")
    assert [s.status for s in posts] == [503, 200]
    assert posts[0].request_id == posts[1].request_id == p.request_id


def test_retry_after_longer_than_allowed_raises_at_once(server: Served, front: object) -> None:
    server.front.fail_next = 1
    server.front.retry_after = "120"
    try:
        started = time.monotonic()
        with Client(server.url, retries=FAST) as client:
            with pytest.raises(ServiceUnavailable) as info:
                client.classify(ENGLISH)
        assert time.monotonic() - started < 1.0
        assert info.value.retry_after_s == 120
        assert len(server.front.posts("/classify")) == 1
    finally:
        server.front.retry_after = "1"


def test_connection_errors_are_retried_then_raised() -> None:
    attempts = 0

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal attempts
            attempts += 1
            return super().handle_request(request)

    from tests.live_server import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with Client(url, retries=FAST, transport=Counting()) as client:
        with pytest.raises(TransportError) as info:
            client.classify(ENGLISH, request_id="conn-1")
    assert attempts == 3
    assert info.value.request_id == "conn-1"
    assert "ConnectError after 3 attempt(s)" in str(info.value)


@pytest.fixture(scope="module")
def busy(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real server whose batch queue holds one text: two texts are always QueueFull (503)."""
    yield from serve(tmp_path_factory.mktemp("busy"), tiny_model_repo, max_queue_texts=1)


def test_real_queue_full_503_is_retried_after_its_retry_after(busy: Served) -> None:
    busy.front.seen.clear()
    policy = RetryPolicy(retries=1, backoff_s=0.01, max_wait_s=5)
    started = time.monotonic()
    with Client(busy.url, retries=policy) as client:
        with pytest.raises(ServiceUnavailable) as info:
            client.classify(["one", "two"])
    assert time.monotonic() - started >= 1.0
    assert info.value.retry_after_s == 1
    assert "queued" in str(info.value.detail)
    assert [s.status for s in busy.front.posts("/classify")] == [503, 503]


KEY = "svc-key-0123456789abcdef"


@pytest.fixture(scope="module")
def secured(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """API keys, and a rate limit of 1 request/s with a burst of 1."""
    yield from serve(
        tmp_path_factory.mktemp("secured"),
        tiny_model_repo,
        api_keys=f"svc:{KEY}",
        rate_limit_per_s=1,
        rate_limit_burst=1,
    )


def test_api_key_from_argument_or_environment(
    secured: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(secured.url, api_key="wrong", retries=FAST) as client:
        with pytest.raises(Unauthorized):
            client.classify(ENGLISH)
    monkeypatch.setenv("TEXTCLS_API_KEY", KEY)
    time.sleep(1.1)  # a fresh token
    with Client(secured.url, retries=FAST) as client:
        assert client.classify(ENGLISH).model == "example"


def test_429_waits_its_retry_after_then_succeeds(secured: Served) -> None:
    secured.front.seen.clear()
    time.sleep(1.1)
    with Client(secured.url, api_key=KEY, retries=FAST) as client:
        client.classify(ENGLISH)
        started = time.monotonic()
        client.classify(ENGLISH)  # the bucket is empty: 429 Retry-After: 1, then 200
        assert time.monotonic() - started >= 0.9
    assert [s.status for s in secured.front.posts("/classify")] == [200, 429, 200]
    with Client(secured.url, api_key=KEY, retries=RetryPolicy(max_wait_s=0.5)) as client:
        with pytest.raises(RateLimited) as info:
            client.classify(ENGLISH)  # asks for 1 s, more than this client will wait
    assert info.value.retry_after_s == 1


def test_feedback_on_a_prediction(server: Served) -> None:
    with Client(server.url) as client:
        p = client.classify(["where is my parcel", ENGLISH])[1]
        other = next(lbl for lbl in client.model("example").classes if lbl != p.label)
        stored = client.feedback(p, other)
        again = client.feedback(p.request_id, p.label, index=1)
        with pytest.raises(NotFound):
            client.feedback("no-such-request", p.label)
    assert (stored.request_id, stored.index, stored.label) == (p.request_id, 1, other)
    assert stored.predicted_label == p.label and not stored.correct
    assert again.correct and again.model == "example"


def test_async_client(server: Served, front: object) -> None:
    async def main() -> None:
        async with AsyncClient(server.url, retries=FAST) as client:
            one, many = await asyncio.gather(
                client.classify(CHINESE), client.classify([ENGLISH, CHINESE])
            )
            assert isinstance(one, Prediction) and isinstance(many, Classification)
            assert (one.label, one.confidence) == (many[1].label, many[1].confidence)
            assert [m.name for m in await client.models()] == ["example"]
            with pytest.raises(InvalidInput):
                await client.classify("")
            server.front.fail_next = 1
            p = await client.classify(ENGLISH, request_id="async-1")
            assert p.request_id == "async-1"
            stored = await client.feedback(p, p.label)
            assert stored.correct

    asyncio.run(main())
    statuses = [(s.status, s.request_id) for s in server.front.posts("/classify")]
    assert statuses[-3:] == [(422, statuses[-3][1]), (503, "async-1"), (200, "async-1")]
