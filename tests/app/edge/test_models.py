"""GET /models, /models/{name}, /healthz, /readyz and the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient


def test_models_lists_what_is_served(client: TestClient, tiny_model_repo: Path) -> None:
    meta = json.loads((tiny_model_repo / "example" / "1" / "metadata.json").read_text())
    body = client.get("/models").json()
    assert body["device"] == "cpu"
    (model,) = body["models"]
    assert model["name"] == "example" and model["ready"] is True
    assert model["version"] == 1 and model["versions_on_disk"] == [1]
    assert model["classes"] == meta["labels"]
    assert model["labels"] == {} and model["traffic"]["canary"] == 0.0
    assert model["threshold"] == meta["fallback"]["threshold"]
    assert model["device"] == "cpu"
    assert model["failures"] == []
    assert client.get("/models/example").json() == model


def test_unknown_model_is_404_naming_the_known_ones(client: TestClient) -> None:
    r = client.get("/models/nope")
    assert r.status_code == 404
    assert r.json() == {"detail": "model 'nope' not found; models: example"}


def test_probes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "log": "off"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "ready": True,
        "device": "cpu",
        "models": {"example": 1},
        "model_states": {"example": "ready"},
        "reason": None,
        "logging": "off",
        "degraded": [],
    }


def test_openapi_documents_the_routes_with_examples(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in (
        "/classify",
        "/models",
        "/models/{name}",
        "/healthz",
        "/readyz",
        "/v1/models/{name}:predict",
        "/v1/models/{name}/versions/{version}:predict",
    ):
        assert path in doc["paths"], path
    request = doc["components"]["schemas"]["ClassifyRequest"]
    assert request["examples"][0] == {"text": "I still haven't received my new card"}
    assert request["additionalProperties"] is False
