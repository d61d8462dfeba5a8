"""``TEXTCLS_MODEL_DIR=s3://...``: the service serves the store's complete versions from its
verified mirror, never a half-uploaded one, and moves to a new version once it is whole."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from app.main import create_app
from app.plane.store.marker import MARKER_FILE, describe, marker_bytes, publish_folder
from app.plane.store.objects import open_store
from tests.app.conftest import make_settings, wait_ready
from tests.live_server import free_port
from tests.s3_server import S3Server
from training.artifact import METADATA_FILE


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


def test_serves_complete_versions_from_s3_and_moves_when_the_next_is_whole(
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
        store.write(f"example/2/{MARKER_FILE}", marker_bytes(describe(v2)))  # the upload ends
        deadline = time.monotonic() + 60
        while _version(client) != 2:
            assert time.monotonic() < deadline, "version 2 never served"
            time.sleep(0.1)


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
    settings = make_settings(url, cache_dir=tmp_path / "cache", poll_interval_s=0.2)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        with caplog.at_level(logging.WARNING, "app.plane.store.mirror"):
            server.stop()  # the store goes away under load
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                assert _version(client) == 1
                assert client.get("/readyz").status_code == 200
        assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1
        metrics = client.get("/metrics").text
        assert "textcls_store_up 0.0" in metrics
        assert "textcls_store_errors_total" in metrics
    # A replica that starts while the store is still away serves its verified cached copy.
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        assert _version(client) == 1
