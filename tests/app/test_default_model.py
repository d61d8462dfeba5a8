"""The default model survives a second one: recorded in the repository, across restarts, moved
only by `textcls models default` (or the admin route)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.models import register
from app.main import create_app
from tests.app.conftest import make_settings, wait_ready, wait_until
from tests.live_server import live_server
from training.artifact import METADATA_FILE, publish, read_default_model

ADMIN_KEY = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
TEXTS = {"texts": ["where is my refund", "I lost my card"]}


def textcls_models(*args: str) -> str:
    """Run ``textcls models ARGS``; its output (it must succeed)."""
    cli = typer.Typer()
    register(cli)
    result = CliRunner().invoke(cli, ["models", *args])
    assert result.exit_code == 0, result.output
    return result.output


def publish_copy(model_dir: Path, name: str) -> None:
    """Publish ``example``'s version 1 as model ``name``, the way the trainer does."""
    model_path = model_dir / name
    model_path.mkdir()
    temp = model_path / ".tmp-copy"
    shutil.copytree(model_dir / "example" / "1", temp)
    meta = json.loads((temp / METADATA_FILE).read_text())
    meta["name"] = name
    (temp / METADATA_FILE).write_text(json.dumps(meta))
    publish(temp, model_path, 1)


def _default_answers(url: str) -> str:
    r = httpx.post(url + "/classify", json=TEXTS)
    assert r.status_code == 200, r.text
    return str(r.json()["model"])


def _served(url: str) -> dict[str, str]:
    models = httpx.get(url + "/models").json()["models"]
    return {m["name"]: m["state"] for m in models}


def test_requests_naming_no_model_keep_their_model_when_another_is_published(
    model_repo_copy: Path,
) -> None:
    (model_repo_copy / "serving.json").unlink(missing_ok=True)  # recorded once first served
    settings = make_settings(model_repo_copy, poll_interval_s=0.1)
    with live_server(create_app(settings)) as url:
        assert _default_answers(url) == "example"
        assert read_default_model(model_repo_copy) == "example"
        publish_copy(model_repo_copy, "other")
        wait_until(lambda: _served(url) == {"example": "ready", "other": "ready"})
        assert _default_answers(url) == "example"
        listed = httpx.get(url + "/models").json()
        assert listed["default_model"] == "example"
        assert listed["default_model_source"] == "repository"
    with live_server(create_app(settings)) as url:  # a restart, or another replica
        assert _served(url) == {"example": "ready", "other": "ready"}
        assert _default_answers(url) == "example"
        folder = ["--model-dir", str(model_repo_copy)]
        assert "default model other" in textcls_models("default", "other", *folder)
        wait_until(lambda: _default_answers(url) == "other")
        assert "the default model" in textcls_models("show", "other", *folder)
        assert "the default model" not in textcls_models("show", "example", *folder)


def test_the_first_model_published_becomes_the_default(
    tmp_path: Path, model_repo_copy: Path
) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "example").mkdir()
    shutil.copytree(model_repo_copy / "example" / "1", fresh / "example" / ".tmp-1")
    publish(fresh / "example" / ".tmp-1", fresh / "example", 1)
    assert read_default_model(fresh) == "example"
    publish_copy(fresh, "second")
    assert read_default_model(fresh) == "example"


def test_the_admin_route_moves_the_default_and_the_setting_overrides(
    model_repo_copy: Path,
) -> None:
    publish_copy(model_repo_copy, "other")
    settings = make_settings(model_repo_copy, admin_api_key=ADMIN_KEY)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        assert c.post("/classify", json=TEXTS).json()["model"] == "example"
        assert c.put("/admin/default-model", json={"model": "other"}).status_code == 401
        r = c.put("/admin/default-model", json={"model": "nope"}, headers=ADMIN)
        assert r.status_code == 404 and "other" in r.json()["detail"]
        r = c.put("/admin/default-model", json={"model": "other"}, headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["default_model"] == "other"
        assert [m["name"] for m in r.json()["models"] if m["default"]] == ["other"]
        assert c.post("/classify", json=TEXTS).json()["model"] == "other"
    assert read_default_model(model_repo_copy) == "other"
    overridden = make_settings(model_repo_copy, default_model="example")
    with TestClient(create_app(overridden)) as c:
        wait_ready(c)
        assert c.post("/classify", json=TEXTS).json()["model"] == "example"
        assert c.get("/models").json()["default_model_source"] == "setting"


def test_a_folder_it_cannot_record_in_still_serves_its_only_model_and_warns_once(
    model_repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (model_repo_copy / "serving.json").unlink(missing_ok=True)
    lock = model_repo_copy / "serving.json.lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()  # the lock cannot be opened, not even by root
    settings = make_settings(model_repo_copy, poll_interval_s=0.05)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        assert c.post("/classify", json=TEXTS).json()["model"] == "example"
        time.sleep(0.5)  # several polls, each trying again
        assert c.get("/models").json()["default_model_source"] == "only model"
    warnings = [r for r in caplog.records if "cannot record example" in r.getMessage()]
    assert len(warnings) == 1
    assert not (model_repo_copy / "serving.json").exists()
