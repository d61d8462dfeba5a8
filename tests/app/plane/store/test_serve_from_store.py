"""``TEXTCLS_MODEL_DIR=s3://...``: the service serves the store's complete versions from its
verified mirror, never a half-uploaded one, and moves to a new version once it is whole."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from app.main import create_app
from app.plane.store.marker import MARKER_FILE, describe, marker_bytes, publish_folder
from app.plane.store.objects import open_store
from app.plane.store.published import read_default
from tests.app.conftest import make_settings, wait_ready, wait_until
from tests.live_server import free_port
from tests.s3_server import S3Server
from training.artifact import METADATA_FILE

UNFINISHED = "no completion marker: the upload is unfinished"
ADMIN_KEY = "admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _as_version(source: Path, dest: Path, version: int) -> Path:
    shutil.copytree(source, dest)
    meta = json.loads((dest / METADATA_FILE).read_text())
    meta["version"] = version
    (dest / METADATA_FILE).write_text(json.dumps(meta))
    return dest


def _version(client: TestClient) -> int:
    r = client.post("/classify", json={"text": "where is my card"})
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def test_serves_complete_versions_from_s3_skipping_unfinished_and_mismatching_ones(
    tiny_model_repo: Path, tmp_path: Path, s3_env: S3Server
) -> None:
    url = f"s3://{s3_env.new_bucket()}/models"
    store = open_store(url)
    publish_folder(store, tiny_model_repo / "example" / "1", "example/1")
    settings = make_settings(url, cache_dir=tmp_path / "cache", poll_interval_s=0.2)
    assert settings.model_store == url and str(settings.model_dir).startswith(str(tmp_path))
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert _version(client) == 1
        # Version 2 arrives file by file, its marker not yet there: never served.
        v2 = _as_version(tiny_model_repo / "example" / "1", tmp_path / "v2", 2)
        for path in describe(v2):
            store.write(f"example/2/{path}", (v2 / path).read_bytes())
            time.sleep(0.1)
        time.sleep(1.0)  # several polls
        assert _version(client) == 1
        skipped = client.get("/models").json()["skipped"]
        assert skipped == [{"name": "example", "version": 2, "reason": UNFINISHED}]
        store.write(f"example/2/{MARKER_FILE}", marker_bytes(describe(v2)))  # the upload ends
        deadline = time.monotonic() + 60
        while _version(client) != 2:
            assert time.monotonic() < deadline, "version 2 never served"
            time.sleep(0.1)
        assert client.get("/models").json()["skipped"] == []

        # Version 3 whole, then a file replaced by other bytes of the same size: skipped at
        # every poll (named in /models and counted), never served.
        v3 = _as_version(tiny_model_repo / "example" / "1", tmp_path / "v3", 3)
        publish_folder(store, v3, "example/3")
        size = (v3 / "saved_model.pb").stat().st_size
        store.write("example/3/saved_model.pb", b"\0" * size)
        wait_until(lambda: client.get("/models").json()["skipped"])
        time.sleep(0.5)  # more polls
        assert _version(client) == 2
        [entry] = client.get("/models").json()["skipped"]
        assert entry["version"] == 3 and "saved_model.pb does not match" in entry["reason"]
        assert (
            'textcls_store_versions_skipped_total{model="example"}' in client.get("/metrics").text
        )


def test_a_stopped_store_fails_no_request_and_a_restart_serves_the_cached_copy(
    tiny_model_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = S3Server(port, server)
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    url = f"s3://{s3.new_bucket()}/models"
    publish_folder(open_store(url), tiny_model_repo / "example" / "1", "example/1")
    settings = make_settings(
        url, cache_dir=tmp_path / "cache", poll_interval_s=0.2, admin_api_key=ADMIN_KEY
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        with caplog.at_level(logging.WARNING, "app.plane.store.mirror"):
            server.stop()  # the store goes away under load
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                assert _version(client) == 1
                assert client.get("/readyz").status_code == 200
        assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1
        # An edit of the serving state cannot reach the store: 503, nothing changed here.
        r = client.put("/admin/models/example/labels/beta", json={"version": 1}, headers=ADMIN)
        assert r.status_code == 503 and "nothing was changed" in r.text, r.text
        assert "beta" not in client.get("/models/example").json()["labels"]
        metrics = client.get("/metrics").text
        assert "textcls_store_up 0.0" in metrics
        assert "textcls_store_errors_total" in metrics
    # A replica that starts while the store is still away serves its verified cached copy.
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert _version(client) == 1


def test_an_edit_through_one_replica_reaches_the_other_and_concurrent_edits_both_land(
    tiny_model_repo: Path, tmp_path: Path, s3_env: S3Server
) -> None:
    url = f"s3://{s3_env.new_bucket()}/models"
    store = open_store(url)
    for version in (1, 2, 3):
        folder = _as_version(tiny_model_repo / "example" / "1", tmp_path / f"v{version}", version)
        publish_folder(store, folder, f"example/{version}")
    replicas = [
        make_settings(
            url, cache_dir=tmp_path / f"cache{i}", poll_interval_s=0.2, admin_api_key=ADMIN_KEY
        )
        for i in (0, 1)
    ]
    with TestClient(create_app(replicas[0])) as a, TestClient(create_app(replicas[1])) as b:
        wait_ready(a)
        wait_ready(b)
        assert _version(b) == 3  # the newest is stable
        r = a.put("/admin/models/example/labels/canary", json={"version": 2}, headers=ADMIN)
        assert r.status_code == 200, r.text
        r = a.put("/admin/models/example/traffic", json={"canary": 1.0}, headers=ADMIN)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 10
        while _version(b) != 2:  # b reads the state a wrote to the store
            assert time.monotonic() < deadline, "the canary never reached the other replica"
            time.sleep(0.05)

        # Two edits at the same moment, one through each replica: both land.
        start = threading.Barrier(2)
        answers: dict[str, int] = {}

        def put(client: TestClient, label: str, version: int) -> None:
            start.wait()
            path = f"/admin/models/example/labels/{label}"
            answers[label] = client.put(path, json={"version": version}, headers=ADMIN).status_code

        threads = [
            threading.Thread(target=put, args=(a, "shadow", 1)),
            threading.Thread(target=put, args=(b, "beta", 3)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == {"shadow": 200, "beta": 200}
        labels = json.loads(store.read("example/serving.json").data)["labels"]
        assert labels == {"canary": 2, "shadow": 1, "beta": 3}

        # The default model, recorded through one replica: in the store, then on the other.
        r = a.put("/admin/default-model", json={"model": "example"}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert read_default(store) == "example"
        recorded = store.read("serving.json").data  # b's mirror copies it at its next poll
        wait_until(lambda: (replicas[1].model_dir / "serving.json").read_bytes() == recorded, 10)
        assert b.get("/models").json()["default_model_source"] == "repository"
