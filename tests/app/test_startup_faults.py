"""Start-up faults: no database, no model directory, an empty one, a corrupt newest version."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.live_service import make_settings, wait_ready

# A port nothing listens on: the connection is refused at once.
UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:9/textcls"


def test_unreachable_database_serves_and_reports_logging_degraded(
    tiny_model_repo: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, tiny_model_repo, database_url=UNREACHABLE_DB)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        ready = client.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["degraded"] == ["logging"]
        assert body["logging"].startswith("database unavailable")
        assert "postgres@" not in body["logging"]  # no connection string leaks out
        r = client.post("/classify", json={"texts": ["card lost", "refund"]})
        assert r.status_code == 200
        request_id = r.json()["request_id"]
    # Stopping with the database still down puts the rows in the spill file, not nowhere.
    spilled = [json.loads(line) for line in (tmp_path / "spill.jsonl").read_text().splitlines()]
    assert sorted(row["index"] for row in spilled if row["request_id"] == request_id) == [0, 1]


def test_healthy_database_is_not_degraded(tiny_model_repo: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, tiny_model_repo))) as client:
        wait_ready(client)
        body = client.get("/readyz").json()
        assert body["logging"] == "ok" and body["degraded"] == [] and body["reason"] is None


def test_missing_model_directory_is_not_ready_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-models"
    with TestClient(create_app(make_settings(tmp_path, missing))) as client:
        r = wait_for_reason(client)
        assert r.status_code == 503
        assert r.json()["ready"] is False
        assert f"model directory {missing} does not exist" in r.json()["reason"]
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        c = client.post("/classify", json={"text": "card lost"})
        assert c.status_code == 503


def test_empty_model_directory_is_not_ready_with_the_reason(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    (empty / "example").mkdir(parents=True)  # a model folder with no version in it
    with TestClient(create_app(make_settings(tmp_path, empty))) as client:
        r = wait_for_reason(client)
        assert r.status_code == 503
        assert "no model versions under" in r.json()["reason"]


def test_corrupt_newest_version_leaves_the_older_one_serving(
    tiny_model_repo: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "models"
    shutil.copytree(tiny_model_repo, repo)
    newest = repo / "example" / "2"
    shutil.copytree(repo / "example" / "1", newest)
    (newest / "saved_model.pb").write_bytes(b"\x00 not a SavedModel \xff" * 10)
    metadata = json.loads((newest / "metadata.json").read_text())
    metadata["version"] = 2
    (newest / "metadata.json").write_text(json.dumps(metadata))
    with TestClient(create_app(make_settings(tmp_path, repo))) as client:
        wait_ready(client)
        assert client.get("/readyz").json()["models"] == {"example": 1}
        r = client.post("/classify", json={"text": "card lost"})
        assert r.status_code == 200 and r.json()["version"] == 1
        info = client.get("/models/example").json()
        assert [f["version"] for f in info["failures"]] == [2]


def wait_for_reason(client: TestClient, timeout_s: float = 30) -> httpx.Response:
    """/readyz once the first scan is over (its reason no longer says 'loading')."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get("/readyz")
        reason = r.json().get("reason") or ""
        if not reason.startswith("loading") or time.monotonic() > deadline:
            return r
        time.sleep(0.05)
