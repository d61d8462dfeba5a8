"""POST /explain on the tiny example model: weights are real deletion effects, and faithful."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.main import create_app
from app.plane.tokens import without_span
from app.predlog.tables import PredictionLog
from tests.app.live_service import make_settings, wait_ready
from training.data import EXAMPLE_DIR

KEY = {"X-API-Key": "explain-key"}


@pytest.fixture(scope="module")
def client(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("explain"),
        tiny_model_repo,
        api_keys="ui:explain-key",
        explain_max_tokens=8,
        max_batch_size=4,  # an explained text spans several batches
    )
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        yield c


def example_texts(n: int) -> list[str]:
    with (EXAMPLE_DIR / "support_chat_test.csv").open(newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)][:n]


def probability(client: TestClient, texts: list[str], label: str) -> list[float]:
    """p(label) of each text, from /classify with the whole ranking."""
    r = client.post("/classify", json={"texts": texts, "top_k": 1000}, headers=KEY)
    assert r.status_code == 200, r.text
    return [
        next(x["confidence"] for x in p["ranking"] if x["label"] == label)
        for p in r.json()["predictions"]
    ]


def test_explain_answers_the_prediction_and_token_offsets(client: TestClient) -> None:
    text = "I still haven't received my new card"
    r = client.post("/explain", json={"text": text}, headers=KEY)
    assert r.status_code == 200, r.text
    body = r.json()
    classified = client.post("/classify", json={"text": text}, headers=KEY).json()
    prediction = classified["predictions"][0]
    assert (body["label"], body["fallback"]) == (prediction["label"], prediction["fallback"])
    assert body["confidence"] == pytest.approx(prediction["confidence"], abs=1e-6)
    assert [x["label"] for x in body["ranking"]] == [x["label"] for x in prediction["ranking"]]
    assert [x["confidence"] for x in body["ranking"]] == pytest.approx(
        [x["confidence"] for x in prediction["ranking"]], abs=1e-6
    )
    assert body["explained_label"] == body["label"] and body["method"] == "occlusion"
    # The model's own tokens (metadata.json's script-aware tokenizer splits at the apostrophe).
    words = ["I", "still", "haven", "t", "received", "my", "new", "card"]
    assert [t["text"] for t in body["tokens"]] == words
    assert all(text[t["start"] : t["end"]] == t["text"] for t in body["tokens"])
    assert (body["tokens_total"], body["token_limit"], body["truncated"]) == (8, 8, False)


def test_each_weight_is_the_drop_when_that_token_is_removed(client: TestClient) -> None:
    text = "my order arrived damaged and I want a refund"
    body = client.post("/explain", json={"text": text, "label": "refund_status"}, headers=KEY)
    body = body.json()
    assert body["explained_label"] == "refund_status"
    removed = [without_span(text, t["start"], t["end"]) for t in body["tokens"]]
    base, *after = probability(client, [text, *removed], "refund_status")
    assert body["explained_probability"] == pytest.approx(base, abs=1e-5)
    for token, p in zip(body["tokens"], after, strict=True):
        assert token["weight"] == pytest.approx(base - p, abs=1e-5)


def test_the_token_cap_is_applied_and_reported(client: TestClient) -> None:
    text = " ".join(f"word{i}" for i in range(20))
    body = client.post("/explain", json={"text": text}, headers=KEY).json()
    assert len(body["tokens"]) == 8 and body["tokens"][-1]["text"] == "word7"
    assert (body["tokens_total"], body["truncated"]) == (20, True)


def test_chinese_text_is_weighed_per_character(client: TestClient) -> None:
    body = client.post("/explain", json={"text": "我的iPhone屏幕碎了"}, headers=KEY).json()
    assert [t["text"] for t in body["tokens"]] == ["我", "的", "iPhone", "屏", "幕", "碎", "了"]
    assert body["tokens_total"] == 7


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"text": "   "}, 422, "empty"),
        ({"text": "x" * 6000}, 422, "characters"),
        ({"text": "refund", "label": "no_such_label"}, 422, "not one of"),
        ({"text": "refund", "model": "nope"}, 404, "not found"),
        ({"text": "refund", "version": 9}, 404, "not served"),
        ({"text": "refund", "extra": 1}, 422, "xtra"),
        ({"texts": ["refund"]}, 422, ""),
    ],
)
def test_bad_input_is_4xx_with_a_message(
    client: TestClient, body: dict[str, object], status: int, detail: str
) -> None:
    r = client.post("/explain", json=body, headers=KEY)
    assert r.status_code == status, r.text
    assert detail in str(r.json()["detail"])


def test_explain_needs_the_api_key_and_is_counted_but_not_logged(client: TestClient) -> None:
    assert client.post("/explain", json={"text": "refund"}).status_code == 401
    assert client.post("/explain", json={"text": "refund"}, headers=KEY).status_code == 200
    services = client.app.state.services  # type: ignore[attr-defined]
    assert services.log_writer.flush(5)
    with Session(services.log_writer.engine) as session:
        logged = session.scalar(
            select(func.count()).where(PredictionLog.text == "refund").select_from(PredictionLog)
        )
    assert logged == 0
    metrics = client.get("/metrics").text
    assert 'textcls_explanations_total{model="example"}' in metrics
    assert 'route="/explain",status="200"' in metrics


def test_deleting_the_top_token_costs_twice_a_random_one(client: TestClient) -> None:
    """The acceptance check on the bundled example: over 100 test texts, deleting the
    top-weighted token lowers the explained label's probability at least twice as much, on
    average, as deleting a random token of the same text (scored anew through /classify)."""
    rng = random.Random(0)
    top_drops: list[float] = []
    random_drops: list[float] = []
    for text in example_texts(100):
        body = client.post("/explain", json={"text": text}, headers=KEY).json()
        tokens = body["tokens"]
        if len(tokens) < 2:
            continue
        top = max(tokens, key=lambda t: t["weight"])
        other = tokens[rng.randrange(len(tokens))]
        edited = [without_span(text, t["start"], t["end"]) for t in (top, other)]
        base, after_top, after_random = probability(
            client, [text, *edited], body["explained_label"]
        )
        top_drops.append(base - after_top)
        random_drops.append(base - after_random)
    assert len(top_drops) >= 90
    mean_top = sum(top_drops) / len(top_drops)
    mean_random = sum(random_drops) / len(random_drops)
    assert mean_top >= 2 * mean_random, (mean_top, mean_random)
