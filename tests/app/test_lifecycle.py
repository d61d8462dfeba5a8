"""Model lifecycle through the real app: admin auth, labels, canary share and stickiness,
version by label, rollback, shadow traffic (logged, never returned, never in the way)."""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.main import create_app
from app.plane import serving_state as ss
from app.predlog.engine import create_db_engine
from tests.app.conftest import (
    add_corrupt_version,
    add_version_copy,
    make_settings,
    wait_ready,
    wait_until,
)
from tests.app.test_metrics import parse, total

ADMIN = {"Authorization": "Bearer admin-secret"}
CLIENT = {"Authorization": "Bearer chat-secret"}


@pytest.fixture(scope="module")
def repo3(tmp_path_factory: pytest.TempPathFactory, tiny_model_repo: Path) -> Path:
    """example/1, 2 and 3 (copies of one model; same answers, different numbers)."""
    import shutil

    dest = tmp_path_factory.mktemp("lifecycle") / "models"
    shutil.copytree(tiny_model_repo, dest)
    add_version_copy(dest, "example", 1, 2)
    add_version_copy(dest, "example", 1, 3)
    add_corrupt_version(dest, "example", 1, 4)
    (dest / "example" / "4" / "saved_model.pb").touch()
    return dest


@pytest.fixture
def models(repo3: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "models"
    shutil.copytree(repo3, dest)
    return dest


@pytest.fixture
def app_client(models: Path) -> Iterator[TestClient]:
    settings = make_settings(models, admin_api_key="admin-secret", pinned_versions={"example": 3})
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        yield c


def _label(c: TestClient, label: str, version: int, **kw: Any) -> httpx.Response:
    return c.put(f"/admin/models/example/labels/{label}", json={"version": version}, **kw)


def test_admin_auth_401_403_200(models: Path) -> None:
    settings = make_settings(models, admin_api_key="admin-secret", api_keys="chat:chat-secret")
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        assert _label(c, "stable", 3).status_code == 401
        assert _label(c, "stable", 3, headers={"Authorization": "Bearer nope"}).status_code == 401
        r = _label(c, "stable", 3, headers=CLIENT)
        assert r.status_code == 403 and "client API key" in r.json()["detail"]
        r = _label(c, "stable", 3, headers=ADMIN)
        assert r.status_code == 200 and r.json()["labels"] == {"stable": 3}
        # The admin key is not a client key.
        assert c.post("/classify", json={"text": "hi"}, headers=ADMIN).status_code == 401
    with TestClient(create_app(make_settings(models))) as c:
        r = _label(c, "stable", 3, headers=ADMIN)
        assert r.status_code == 403 and "TEXTCLS_ADMIN_API_KEY" in r.json()["detail"]
        assert c.post("/admin/models/example/rollback", headers=ADMIN).status_code == 403


def test_labels_404_409_422(app_client: TestClient, models: Path) -> None:
    c = app_client
    r = c.put("/admin/models/nope/labels/stable", json={"version": 1}, headers=ADMIN)
    assert r.status_code == 404 and "models: example" in r.json()["detail"]
    r = _label(c, "stable", 9, headers=ADMIN)
    assert r.status_code == 404 and "versions: 1, 2, 3, 4" in r.json()["detail"]
    r = _label(c, "canary", 4, headers=ADMIN)
    assert r.status_code == 409 and "cannot be loaded" in r.json()["detail"]
    assert not (models / "example" / "serving.json").exists()  # nothing changed
    assert _label(c, "Bad Label!", 1, headers=ADMIN).status_code in (404, 422)
    assert _label(c, "beta-1", 1, headers=ADMIN).status_code == 200
    r = c.put("/admin/models/example/traffic", json={"canary": 0.5}, headers=ADMIN)
    assert r.status_code == 409 and "canary" in r.json()["detail"]
    r = c.put("/admin/models/example/traffic", json={"canary": 1.5}, headers=ADMIN)
    assert r.status_code == 422
    r = c.delete("/admin/models/example/labels/beta-1", headers=ADMIN)
    assert r.status_code == 200 and r.json()["labels"] == {}
    assert c.delete("/admin/models/example/labels/beta-1", headers=ADMIN).status_code == 404
    r = c.post("/admin/models/example/rollback", headers=ADMIN)
    assert r.status_code == 409 and "stable" in r.json()["detail"]


def test_canary_share_stickiness_labels_and_rollback(app_client: TestClient, models: Path) -> None:
    c = app_client
    assert _label(c, "stable", 1, headers=ADMIN).status_code == 200
    assert _label(c, "canary", 2, headers=ADMIN).status_code == 200
    r = c.put("/admin/models/example/traffic", json={"canary": 0.2}, headers=ADMIN)
    body = r.json()
    assert body["labels"] == {"canary": 2, "stable": 1}
    assert body["traffic"]["canary"] == 0.2 and body["version"] == 1
    assert c.get("/models/example").json()["traffic"] == body["traffic"]
    assert ss.read_state(models / "example").labels == {"canary": 2, "stable": 1}
    # Over 400 sessions the canary's share is 0.2 within 4 binomial standard deviations.
    n = 400
    first = {}
    for i in range(n):
        r = c.post("/classify", json={"text": f"where is my card {i}", "session": f"conv-{i}"})
        assert r.status_code == 200
        first[i] = r.json()["version"]
    share = sum(v == 2 for v in first.values()) / n
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n), share
    assert set(first.values()) == {1, 2}
    # Sticky: the same sessions get the same versions again.
    for i in range(0, n, 4):
        r = c.post("/classify", json={"text": "another message", "session": f"conv-{i}"})
        assert r.json()["version"] == first[i]
    # Without a session the split is per request.
    per_request = [c.post("/classify", json={"text": "hi"}).json()["version"] for _ in range(n)]
    share = per_request.count(2) / n
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n), share
    # By label or number; the response's version is the version that answered.
    assert c.post("/classify", json={"text": "x", "version": "canary"}).json()["version"] == 2
    assert c.post("/classify", json={"text": "x", "version": "stable"}).json()["version"] == 1
    assert c.post("/classify", json={"text": "x", "version": 2}).json()["version"] == 2
    r = c.post("/classify", json={"text": "x", "version": "gamma"})
    assert r.status_code == 404 and "labels: canary, stable" in r.json()["detail"]
    r = c.post("/classify", json={"text": "x", "version": 3})  # on disk, not labelled: not served
    assert r.status_code == 404 and "serving versions 1, 2" in r.json()["detail"]
    assert c.post("/classify", json={"text": "x", "session": ""}).status_code == 422
    assert c.post("/classify", json={"text": "x", "session": "s" * 129}).status_code == 422
    # TF Serving's label route.
    r = c.post("/v1/models/example/labels/canary:predict", json={"instances": ["hi"]})
    assert r.status_code == 200
    # Rollback: all traffic to stable at once.
    assert _label(c, "shadow", 3, headers=ADMIN).status_code == 200
    r = c.post("/admin/models/example/rollback", headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["labels"] == {"canary": 2, "stable": 1} and r.json()["traffic"]["canary"] == 0
    versions = {
        c.post("/classify", json={"text": "hi", "session": f"conv-{i}"}).json()["version"]
        for i in range(100)
    }
    assert versions == {1}
    metrics = parse(c.get("/metrics").text)
    assert total(metrics, "textcls_version_predictions_total", version="2", role="primary") > 0
    assert total(metrics, "textcls_canary_share", model="example") == 0.0


def _log_rows(url: str) -> list[tuple[str, int, str, int]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text('SELECT request_id, "index", role, version FROM prediction_log')
                )
            ]
    finally:
        engine.dispose()


def test_shadow_rows_equal_requests_and_nothing_shadow_is_returned(
    models: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    settings = make_settings(
        models,
        admin_api_key="admin-secret",
        log_predictions=True,
        database_url=url,
        log_spill_path=tmp_path / "spill.jsonl",
    )
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        assert _label(c, "stable", 1, headers=ADMIN).status_code == 200
        assert _label(c, "shadow", 2, headers=ADMIN).status_code == 200
        answers = []
        for i in range(40):
            r = c.post("/classify", json={"texts": [f"lost my card {i}", "refund please"]})
            answers.append(r.json())
        assert {a["version"] for a in answers} == {1}

        def shadowed() -> bool:
            m = parse(c.get("/metrics").text)
            return total(m, "textcls_shadow_compared_total", version="2") == 80

        wait_until(shadowed, timeout=30)
        m = parse(c.get("/metrics").text)
        # Same weights under two numbers: the shadow agrees on every text.
        assert total(m, "textcls_shadow_agreed_total", version="2") == 80
        assert total(m, "textcls_version_predictions_total", version="2", role="shadow") == 80
        assert total(m, "textcls_version_predictions_total", version="1", role="primary") == 80
        # The answered-prediction counter holds the answers only.
        assert total(m, "textcls_predictions_total", version="2") == 0
    rows = _log_rows(url)
    primary = {(r[0], r[1]) for r in rows if r[2] == "primary"}
    shadow = {(r[0], r[1]) for r in rows if r[2] == "shadow"}
    assert len(primary) == 80 and shadow == primary
    assert {r[3] for r in rows if r[2] == "shadow"} == {2}
    assert {a["request_id"] for a in answers} == {r[0] for r in rows}


def test_a_shadow_that_fails_to_load_changes_nothing(models: Path) -> None:
    settings = make_settings(models, poll_interval_s=0.1)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        before = c.post("/classify", json={"text": "lost my card"}).json()
        # Written as the CLI (or another replica) would: no server-side load check.
        ss.write_state(models / "example", ss.ServingState({"stable": 3, "shadow": 4}))
        wait_until(lambda: c.get("/models/example").json()["labels"].get("shadow") == 4)
        failed = lambda: [f["version"] for f in c.get("/models/example").json()["failures"]]  # noqa: E731
        wait_until(lambda: 4 in failed())
        after = c.post("/classify", json={"text": "lost my card"}).json()
        assert after["version"] == 3 and after["predictions"] == before["predictions"]
        info = c.get("/models/example").json()
        assert info["traffic"]["shadow_version"] is None
        assert total(parse(c.get("/metrics").text), "textcls_shadow_compared_total") == 0


async def _latencies(app: Any, n: int) -> list[float]:
    transport = httpx.ASGITransport(app=app)
    out: list[float] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:

        async def one(i: int) -> None:
            started = time.perf_counter()
            r = await ac.post("/classify", json={"text": f"refund {i}"})
            assert r.status_code == 200 and r.json()["version"] == 1
            out.append(time.perf_counter() - started)

        for start in range(0, n, 8):
            await asyncio.gather(*(one(i) for i in range(start, start + 8)))
    return out


def test_a_slow_shadow_never_delays_the_answer(models: Path) -> None:
    settings = make_settings(models, admin_api_key="admin-secret", shadow_max_queue_texts=4)
    app = create_app(settings)
    with TestClient(app) as c:
        wait_ready(c)
        assert _label(c, "stable", 1, headers=ADMIN).status_code == 200
        base = statistics.median(c.portal.call(_latencies, app, 80))
        assert _label(c, "shadow", 2, headers=ADMIN).status_code == 200
        shadow_model = app.state.services.repository.entries["example"].others[2].model
        real_predict = shadow_model.predict

        def slow_predict(texts: list[str]) -> Any:
            time.sleep(0.25)  # a shadow far slower than the answering version
            return real_predict(texts)

        shadow_model.predict = slow_predict  # type: ignore[method-assign]
        with_shadow = statistics.median(c.portal.call(_latencies, app, 80))
        m = parse(c.get("/metrics").text)
        assert total(m, "textcls_shadow_dropped_total", reason="queue_full") > 0
    # Noise on this shared machine is several ms; a blocked answer would take 250 ms.
    assert with_shadow < base + 0.05, (base, with_shadow)


def test_state_survives_a_restart(models: Path) -> None:
    settings = make_settings(models, admin_api_key="admin-secret")
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        assert _label(c, "stable", 2, headers=ADMIN).status_code == 200
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        assert c.post("/classify", json={"text": "hi"}).json()["version"] == 2
        assert c.get("/models/example").json()["labels"] == {"stable": 2}
    assert json.loads((models / "example" / "serving.json").read_text())["labels"] == {"stable": 2}


def test_a_stable_that_does_not_load_at_start_up_serves_the_newest_that_does(
    models: Path,
) -> None:
    ss.write_state(models / "example", ss.ServingState({"stable": 4}))
    with TestClient(create_app(make_settings(models))) as c:
        wait_ready(c)
        assert c.post("/classify", json={"text": "hi"}).json()["version"] == 3
        info = c.get("/models/example").json()
        assert [f["version"] for f in info["failures"]] == [4]
        assert info["labels"] == {"stable": 4} and info["traffic"]["stable_version"] == 3
