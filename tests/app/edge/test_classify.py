"""POST /classify on a real tiny model: answers match the SavedModel; bad input is 4xx."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings

TEXTS = [
    "I lost my card yesterday",
    "where is my refund",
    "please reset my password",
    "I want to talk to a human",
    "my payment failed again",
]


@pytest.fixture(scope="module")
def direct(tiny_model_repo: Path) -> tuple[list[str], object]:
    """The SavedModel signature called directly, and the labels, as ground truth."""
    path = tiny_model_repo / "example" / "1"
    labels = json.loads((path / "metadata.json").read_text())["labels"]
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    return labels, fn


def _direct_probs(direct: tuple[list[str], object], texts: list[str]) -> np.ndarray:
    _, fn = direct
    return fn(text=tf.constant(texts))["probabilities"].numpy()  # type: ignore[operator]


def _check(prediction: dict, probs: np.ndarray, labels: list[str], top_k: int = 3) -> None:
    order = np.argsort(-probs, kind="stable")
    assert prediction["label"] == labels[order[0]]
    assert prediction["confidence"] == pytest.approx(float(probs[order[0]]), abs=1e-5)
    assert [r["label"] for r in prediction["ranking"]] == [labels[i] for i in order[:top_k]]
    for r, i in zip(prediction["ranking"], order[:top_k], strict=True):
        assert r["confidence"] == pytest.approx(float(probs[i]), abs=1e-5)


def test_single_text_matches_direct_call(client: TestClient, direct) -> None:
    labels, _ = direct
    r = client.post("/classify", json={"text": TEXTS[0]})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "example" and body["version"] == 1
    assert len(body["request_id"]) == 32
    (pred,) = body["predictions"]
    _check(pred, _direct_probs(direct, [TEXTS[0]])[0], labels)


def test_batch_matches_direct_call_in_order(client: TestClient, direct) -> None:
    labels, _ = direct
    r = client.post("/classify", json={"texts": TEXTS, "top_k": 2})
    assert r.status_code == 200
    probs = _direct_probs(direct, TEXTS)
    preds = r.json()["predictions"]
    assert len(preds) == len(TEXTS)
    for pred, row in zip(preds, probs, strict=True):
        _check(pred, row, labels, top_k=2)


def test_top_k_is_capped_at_the_number_of_labels(client: TestClient, direct) -> None:
    labels, _ = direct
    r = client.post("/classify", json={"text": TEXTS[1], "top_k": 1000})
    assert len(r.json()["predictions"][0]["ranking"]) == len(labels)


def test_threshold_overrides_the_models(client: TestClient) -> None:
    never = client.post("/classify", json={"text": TEXTS[0], "threshold": 0.0}).json()
    always = client.post("/classify", json={"text": TEXTS[0], "threshold": 1.0}).json()
    assert never["predictions"][0]["fallback"] is False
    assert always["predictions"][0]["fallback"] is True


def test_model_and_version_can_be_named(client: TestClient) -> None:
    r = client.post("/classify", json={"text": "hi", "model": "example", "version": 1})
    assert r.status_code == 200


def test_fallback_margin_setting(tiny_model_repo: Path) -> None:
    settings = make_settings(tiny_model_repo, fallback_margin=1.0)
    with TestClient(create_app(settings)) as c:
        from tests.app.conftest import wait_ready

        wait_ready(c)
        r = c.post("/classify", json={"text": TEXTS[0], "threshold": 0.0})
        # Top two are always closer than 1.0, so every prediction falls back.
        assert r.json()["predictions"][0]["fallback"] is True


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 422, "exactly one of 'text' or 'texts'"),
        ({"text": "a", "texts": ["b"]}, 422, "exactly one of 'text' or 'texts'"),
        ({"text": "   \n\t"}, 422, "'text' is empty"),
        ({"texts": ["ok", ""]}, 422, "text 1 is empty"),
        ({"texts": []}, 422, "at least one text"),
        ({"text": "x" * 5001}, 422, "'text' has 5001 characters (at most 5000)"),
        ({"texts": ["x"] * 257}, 422, "too many texts: 257 (at most 256)"),
        ({"text": 3}, 422, "valid string"),
        ({"texts": "not a list"}, 422, "valid list"),
        ({"texts": ["a", 1]}, 422, "valid string"),
        ({"text": "a", "top_k": "3"}, 422, "valid integer"),
        ({"text": "a", "top_k": 0}, 422, "greater than or equal to 1"),
        ({"text": "a", "top_k": 19960564091300921344}, 422, "less than or equal to 10000"),
        ({"text": "a", "version": 2**63}, 422, "less than or equal to 2147483647"),
        ({"text": "a", "threshold": 1.5}, 422, "less than or equal to 1"),
        ({"text": "a", "margin": -0.1}, 422, "greater than or equal to 0"),
        ({"text": "a", "version": True}, 422, "valid integer"),
        ({"text": "a", "colour": "red"}, 422, "Extra inputs are not permitted"),
        ({"text": "a", "model": "nope"}, 404, "model 'nope' not found; models: example"),
        ({"text": "a", "version": 7}, 404, "version 7 is not served; serving version 1"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(
    client: TestClient, body: dict, status: int, message: str
) -> None:
    r = client.post("/classify", json=body)
    assert r.status_code == status, r.text
    assert message in json.dumps(r.json()["detail"])


@pytest.mark.parametrize(
    ("headers", "got"),
    [
        (
            {"content-type": "application/x-www-form-urlencoded"},
            "'application/x-www-form-urlencoded'",
        ),
        ({}, "no Content-Type"),
        ({"content-type": "text/plain"}, "'text/plain'"),
    ],
)
def test_a_body_without_a_json_content_type_is_told_which_to_send(
    client: TestClient, headers: dict[str, str], got: str
) -> None:
    # What `curl -d '{"text": "..."}' .../classify` sends: JSON under a form content type.
    r = client.post("/classify", content=b'{"text": "refund please"}', headers=headers)
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert error["loc"] == ["body"]
    assert "'Content-Type: application/json'" in error["msg"] and got in error["msg"]
    feedback = client.post("/feedback", content=b'{"index": 0}', headers=headers)
    assert feedback.status_code == 422 and "Content-Type" in feedback.text


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post(
        "/classify", content=b'{"text": "a",', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert "JSON decode error" in r.text


def test_non_object_json_is_422(client: TestClient) -> None:
    r = client.post("/classify", json=["a", "b"])
    assert r.status_code == 422


async def _concurrent(app, texts: list[str]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
        return await asyncio.gather(*(ac.post("/classify", json={"text": t}) for t in texts))


def test_200_concurrent_requests_each_get_their_own_answer(tiny_model_repo: Path, direct) -> None:
    labels, _ = direct
    # Distinct texts, and a wait long enough that many of them share model batches.
    texts = [f"{TEXTS[i % len(TEXTS)]} number {i}" for i in range(200)]
    settings = make_settings(tiny_model_repo, max_batch_size=32, max_batch_wait_ms=20)
    app = create_app(settings)
    with TestClient(app) as c:  # runs the lifespan; requests below share its event loop
        from tests.app.conftest import wait_ready

        wait_ready(c)
        responses = c.portal.call(_concurrent, app, texts)
        metrics = c.get("/metrics").text
    probs = _direct_probs(direct, texts)
    for r, row in zip(responses, probs, strict=True):
        assert r.status_code == 200, r.text
        _check(r.json()["predictions"][0], row, labels)
    # The texts really were batched together (otherwise this test proves little).
    count = _sample(metrics, 'textcls_inference_batch_size_count{model="example"}')
    assert count < 200


def _sample(metrics_text: str, prefix: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{prefix} not in /metrics")


def test_a_body_that_is_not_utf8_is_named_as_such(client: TestClient) -> None:
    body = '{"text": "我的卡还没有收到"}'.encode("gb18030")
    r = client.post("/classify", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "not UTF-8" in detail and "position 10" in detail, detail
