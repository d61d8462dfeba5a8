"""TensorFlow Serving's REST predict: row and columnar bodies, versions, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from fastapi.testclient import TestClient

TEXTS = ["I lost my card", "where is my refund"]


@pytest.fixture(scope="module")
def expected(tiny_model_repo: Path) -> np.ndarray:
    fn = tf.saved_model.load(str(tiny_model_repo / "example" / "1")).signatures["serving_default"]
    return fn(text=tf.constant(TEXTS))["probabilities"].numpy()


@pytest.mark.parametrize(
    "body",
    [
        {"instances": TEXTS},
        {"instances": [{"text": t} for t in TEXTS]},
        {"instances": TEXTS, "signature_name": "serving_default"},
    ],
)
def test_instances_give_predictions(client: TestClient, expected: np.ndarray, body) -> None:
    r = client.post("/v1/models/example:predict", json=body)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], expected, atol=1e-5)


@pytest.mark.parametrize("body", [{"inputs": TEXTS}, {"inputs": {"text": TEXTS}}])
def test_inputs_give_outputs(client: TestClient, expected: np.ndarray, body) -> None:
    r = client.post("/v1/models/example/versions/1:predict", json=body)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["outputs"], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/models/nope:predict", {"instances": ["a"]}, 404, "model 'nope' not found"),
        ("/v1/models/example/versions/9:predict", {"instances": ["a"]}, 404, "version 9"),
        (f"/v1/models/example/versions/{2**64}:predict", {"instances": ["a"]}, 422, "less than"),
        ("/v1/models/example/versions/0:predict", {"instances": ["a"]}, 422, "greater than"),
        ("/v1/models/example:predict", {}, 422, "exactly one of 'instances' or 'inputs'"),
        ("/v1/models/example:predict", {"instances": [""]}, 422, "text 0 is empty"),
        ("/v1/models/example:predict", {"instances": [1]}, 422, "valid string"),
        ("/v1/models/example:predict", {"instances": [{"txt": "a"}]}, 422, "instance 0"),
        ("/v1/models/example:predict", {"inputs": {"x": ["a"]}}, 422, "'inputs' must name"),
        (
            "/v1/models/example:predict",
            {"instances": ["a"], "signature_name": "other"},
            422,
            "unknown signature_name",
        ),
    ],
)
def test_errors(client: TestClient, path: str, body: dict, status: int, message: str) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in json.dumps(r.json()["detail"])


@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Type": "application/x-www-form-urlencoded"}, {"Content-Type": "text/plain"}],
    ids=["none", "curl-d-form", "text"],
)
def test_body_is_json_whatever_the_content_type(
    client: TestClient, expected: np.ndarray, headers: dict[str, str]
) -> None:
    # TF Serving reads JSON regardless; its clients (and `curl -d`) do not say application/json.
    body = json.dumps({"instances": TEXTS}).encode()
    r = client.post("/v1/models/example:predict", content=body, headers=headers)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], expected, atol=1e-5)


def test_invalid_json_is_a_422_naming_the_body(client: TestClient) -> None:
    r = client.post("/v1/models/example:predict", content=b"{not json")
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"][0] == "body" and error["type"] == "json_invalid"
