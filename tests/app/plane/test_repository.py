"""The model repository: hot reload under load, corrupt versions, pinning, release, queue bound."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.plane.services import Services
from tests.app.conftest import (
    add_corrupt_version,
    add_version_copy,
    make_settings,
    wait_ready,
    wait_until,
)


def _services(app: FastAPI) -> Services:
    return app.state.services


async def _load_during_reload(app: FastAPI, model_dir: Path) -> tuple[list[str], list[int]]:
    """Send requests from 16 clients while version 2 is published; stop after it serves."""
    failures: list[str] = []
    versions: list[int] = []
    done = asyncio.Event()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:

        async def client(i: int) -> None:
            n = 0
            while not done.is_set():
                n += 1
                r = await ac.post("/classify", json={"texts": [f"refund {i} {n}", "lost card"]})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                else:
                    versions.append(r.json()["version"])

        tasks = [asyncio.create_task(client(i)) for i in range(16)]
        await asyncio.sleep(0.3)
        await asyncio.to_thread(add_version_copy, model_dir, "example", 1, 2)
        deadline = time.monotonic() + 60
        while versions.count(2) < 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        done.set()
        await asyncio.gather(*tasks)
    return failures, versions


def test_new_version_under_load_swaps_with_no_failed_request(model_repo_copy: Path) -> None:
    app = create_app(make_settings(model_repo_copy, poll_interval_s=0.1))
    with TestClient(app) as c:
        wait_ready(c)
        old = _services(app).repository.entries["example"].serving
        assert old is not None
        failures, versions = c.portal.call(_load_during_reload, app, model_repo_copy)
        assert failures == []
        assert versions.count(1) > 0 and versions.count(2) >= 100
        assert c.post("/classify", json={"text": "hello"}).json()["version"] == 2
        # The old version was drained and released: its thread ended, its model dropped.
        wait_until(lambda: not old.batcher.is_alive())
        assert old.model.ready is False
        metrics = c.get("/metrics").text
    assert 'textcls_model_reloads_total{model="example",result="success"} 2.0' in metrics
    assert 'textcls_model_info{device="cpu",model="example",version="2"} 1.0' in metrics
    assert 'version="1"' not in metrics.split("textcls_model_info")[-1].split("# HELP")[0]


def test_corrupt_newest_version_at_start_up_is_skipped(model_repo_copy: Path) -> None:
    add_corrupt_version(model_repo_copy, "example", 1, 2)
    with TestClient(create_app(make_settings(model_repo_copy))) as c:
        wait_ready(c)
        assert c.post("/classify", json={"text": "refund"}).json()["version"] == 1
        info = c.get("/models/example").json()
        assert info["version"] == 1 and info["versions_on_disk"] == [1, 2]
        (failure,) = info["failures"]
        assert failure["version"] == 2 and "cannot load the SavedModel" in failure["error"]
        metrics = c.get("/metrics").text
    assert 'textcls_model_reloads_total{model="example",result="failure"} 1.0' in metrics


def test_corrupt_new_version_never_replaces_a_working_one(model_repo_copy: Path) -> None:
    app = create_app(make_settings(model_repo_copy, poll_interval_s=0.05))
    with TestClient(app) as c:
        wait_ready(c)
        add_corrupt_version(model_repo_copy, "example", 1, 2)
        wait_until(lambda: c.get("/models/example").json()["failures"])
        assert c.post("/classify", json={"text": "refund"}).json()["version"] == 1
        # A later good version is still picked up, past the broken one.
        add_version_copy(model_repo_copy, "example", 1, 3)
        wait_until(lambda: c.get("/models/example").json()["version"] == 3)
        assert c.post("/classify", json={"text": "refund"}).json()["version"] == 3
        # The broken folder is not retried on every poll (only when it changes).
        time.sleep(0.3)
        metrics = c.get("/metrics").text
    assert 'textcls_model_reloads_total{model="example",result="failure"} 1.0' in metrics


def test_pinned_version_is_served_instead_of_the_newest(model_repo_copy: Path) -> None:
    add_version_copy(model_repo_copy, "example", 1, 2)
    settings = make_settings(model_repo_copy, pinned_versions={"example": 1})
    with TestClient(create_app(settings)) as c:
        assert wait_ready(c)["models"] == {"example": 1}
        r = c.post("/classify", json={"text": "refund", "version": 2})
        assert r.status_code == 404
        assert "serving version 1" in r.json()["detail"]


def test_not_ready_until_a_model_appears(tmp_path: Path, tiny_model_repo: Path) -> None:
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    with TestClient(create_app(make_settings(model_dir, poll_interval_s=0.05))) as c:
        assert c.get("/healthz").json() == {"status": "ok", "log": "off"}
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert r.json()["device"] == "cpu"
        r = c.post("/classify", json={"text": "refund"})
        assert r.status_code == 503
        # A model published later is found by the poller.
        (model_dir / "example").mkdir()
        src = tiny_model_repo / "example" / "1"
        import shutil

        shutil.copytree(src, model_dir / "example" / ".tmp-1")
        (model_dir / "example" / ".tmp-1").rename(model_dir / "example" / "1")
        assert wait_ready(c)["models"] == {"example": 1}


def test_full_queue_answers_503_with_retry_after(tiny_model_repo: Path) -> None:
    # A long batch wait holds the first request's texts in the queue, so the second finds
    # the queue full: the bound is hit for real, with nothing mocked.
    settings = make_settings(
        tiny_model_repo, max_batch_size=64, max_batch_wait_ms=1000, max_queue_texts=5
    )
    app = create_app(settings)

    async def two_requests() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
            first = asyncio.create_task(ac.post("/classify", json={"texts": ["a", "b", "c"]}))
            await asyncio.sleep(0.2)
            second = await ac.post("/classify", json={"texts": ["d", "e", "f"]})
            return await first, second

    with TestClient(app) as c:
        wait_ready(c)
        first, second = c.portal.call(two_requests)
        metrics = c.get("/metrics").text
    assert first.status_code == 200
    assert second.status_code == 503
    assert second.headers["retry-after"] == "1"
    assert "3 texts queued (limit 5)" in second.json()["detail"]
    assert 'textcls_http_requests_total{method="POST",route="/classify",status="503"} 1.0' in (
        metrics
    )


def test_retired_versions_do_not_pile_up_in_the_frozen_heap(
    model_repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """app.plane.heap freezes what is alive after each swap; versions retired later still go.

    Without the unfreeze before each collection, every retired version's cyclic garbage stays
    frozen for good: about 3,600 objects per reload of this tiny model (measured).
    """
    app = create_app(make_settings(model_repo_copy, poll_interval_s=0.1))
    caplog.set_level(logging.INFO, logger="app.plane.repository")
    with TestClient(app) as c:
        wait_ready(c)
        wait_until(lambda: "heap settled" in caplog.text)
        first = gc.get_freeze_count()
        assert first > 0  # settled once the first version loaded
        for version in (2, 3, 4):
            add_version_copy(model_repo_copy, "example", 1, version)
            wait_until(
                lambda v=version: c.post("/classify", json={"text": "hi"}).json()["version"] == v
            )
            settled = lambda n=version: caplog.text.count("heap settled") == n  # noqa: E731
            wait_until(settled)
        grown = gc.get_freeze_count() - first
    assert grown < 1500, f"{grown} more frozen objects after 3 reloads"


def test_release_destroys_the_models_tf_resources(tiny_model_repo: Path) -> None:
    """TensorFlow keeps a restored SavedModel's lookup tables after its Python objects go;
    release() destroys them, so even a kept reference to the function no longer runs."""
    import tensorflow as tf

    from app.plane.device import CPU
    from app.plane.loaded_model import LoadedModel

    model = LoadedModel("example", 1, tiny_model_repo / "example" / "1", device=CPU)
    model.load()
    fn = model._fn
    assert model.predict(["lost card"]).shape[0] == 1
    model.release()
    with pytest.raises(tf.errors.OpError):
        fn(text=tf.constant(["lost card"]))


def _add_second_model(model_dir: Path, name: str) -> None:
    """A second model beside ``example`` (a copy of its version 1, renamed)."""
    import json
    import shutil

    from training.artifact import METADATA_FILE

    shutil.copytree(model_dir / "example", model_dir / name)
    meta_path = model_dir / name / "1" / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    meta["name"] = name
    meta_path.write_text(json.dumps(meta))


def test_two_models_without_a_default_warn_before_ready_and_the_422_says_how(
    model_repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (model_repo_copy / "serving.json").unlink(missing_ok=True)  # no default recorded
    _add_second_model(model_repo_copy, "tickets")
    caplog.set_level(logging.INFO, logger="app.plane.repository")
    with TestClient(create_app(make_settings(model_repo_copy))) as c:
        ready = wait_ready(c)
        # Said before ready, with both models loaded by then.
        assert ready["models"] == {"example": 1, "tickets": 1}
        warning = next(r for r in caplog.records if "no default model" in r.getMessage())
        assert warning.levelno == logging.WARNING
        assert "(example, tickets)" in warning.getMessage()
        assert "textcls models default example" in warning.getMessage()
        r = c.post("/classify", json={"text": "refund please"})
        assert r.status_code == 422
        assert "textcls models default NAME" in r.json()["detail"]
        assert c.post("/classify", json={"text": "hi", "model": "tickets"}).status_code == 200
        models = c.get("/models").json()
        assert models["default_model"] is None and models["default_model_source"] is None
    assert not (model_repo_copy / "serving.json").exists()  # two models: nothing chosen


def test_the_default_model_setting_chooses_and_is_logged(
    model_repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _add_second_model(model_repo_copy, "tickets")  # the recorded default is example
    caplog.set_level(logging.INFO, logger="app.plane.repository")
    with TestClient(create_app(make_settings(model_repo_copy, default_model="tickets"))) as c:
        wait_until(lambda: len(wait_ready(c)["models"]) == 2)
        r = c.post("/classify", json={"text": "refund please"})
        assert r.status_code == 200 and r.json()["model"] == "tickets"
        wait_until(lambda: "go to tickets (TEXTCLS_DEFAULT_MODEL)" in caplog.text)
    repository = [r for r in caplog.records if r.name == "app.plane.repository"]
    assert not [r for r in repository if r.levelno >= logging.WARNING]
