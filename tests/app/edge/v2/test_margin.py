"""The near-tie margin chosen at training (metadata.json) is honoured by /classify, V2 REST and
gRPC; a request's margin and TEXTCLS_FALLBACK_MARGIN override it; a model without one has none."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings, wait_ready
from tests.live_server import free_port, live_server
from training.artifact import METADATA_FILE

TEXTS = ["I still have not received my new card", "cancel my order please", "refund"]


def _with_fallback(source: Path, dest: Path, fallback: dict[str, float | None]) -> Path:
    """A copy of the tiny repository whose version 1 has this fallback section."""
    shutil.copytree(source, dest)
    path = dest / "example" / "1" / METADATA_FILE
    meta = json.loads(path.read_text())
    meta["fallback"].update(fallback)
    meta["fallback"] = {k: v for k, v in meta["fallback"].items() if v is not None}
    path.write_text(json.dumps(meta))
    return dest


@pytest.fixture(scope="module")
def wide_margin(tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Threshold 0 and margin 1: every prediction falls back through the margin alone."""
    dest = tmp_path_factory.mktemp("margin") / "models"
    return _with_fallback(tiny_model_repo, dest, {"threshold": 0.0, "margin": 1.0})


@pytest.fixture(scope="module")
def served(wide_margin: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    with live_server(create_app(make_settings(wide_margin, grpc_port=port))) as url:
        yield url, port


def test_classify_v2_rest_and_grpc_honour_the_models_margin(served: tuple[str, int]) -> None:
    url, port = served
    r = httpx.post(url + "/classify", json={"texts": TEXTS})
    assert [p["fallback"] for p in r.json()["predictions"]] == [True] * 3
    r = httpx.post(url + "/classify", json={"texts": TEXTS, "margin": 0.0})
    assert [p["fallback"] for p in r.json()["predictions"]] == [False] * 3
    assert httpx.get(url + "/models/example").json()["margin"] == 1.0
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": TEXTS}]}
    outputs = httpx.post(url + "/v2/models/example/infer", json=body).json()["outputs"]
    (fallback,) = [o for o in outputs if o["name"] == "fallback"]
    assert fallback["data"] == [True] * 3
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    text = grpcclient.InferInput("text", [3], "BYTES")
    text.set_data_from_numpy(np.array([t.encode() for t in TEXTS], dtype=object))
    result = client.infer("example", [text])
    assert result.as_numpy("fallback").tolist() == [True] * 3


def test_the_setting_overrides_the_models_margin(wide_margin: Path) -> None:
    with TestClient(create_app(make_settings(wide_margin, fallback_margin=0.0))) as c:
        wait_ready(c)
        r = c.post("/classify", json={"texts": TEXTS})
        assert [p["fallback"] for p in r.json()["predictions"]] == [False] * 3


def test_a_model_without_a_margin_loads_and_has_none(tiny_model_repo: Path, tmp_path: Path) -> None:
    old = _with_fallback(tiny_model_repo, tmp_path / "models", {"threshold": 0.0, "margin": None})
    assert (
        "margin" not in json.loads((old / "example" / "1" / METADATA_FILE).read_text())["fallback"]
    )
    with TestClient(create_app(make_settings(old))) as c:
        wait_ready(c)
        r = c.post("/classify", json={"texts": TEXTS})
        assert [p["fallback"] for p in r.json()["predictions"]] == [False] * 3
        assert c.get("/models/example").json()["margin"] == 0.0
