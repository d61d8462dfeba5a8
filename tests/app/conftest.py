"""Serving fixtures: settings for a model_dir, an app client that waits for readiness."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from training.artifact import METADATA_FILE


def make_settings(model_dir: Path, **overrides: Any) -> Settings:
    """Test settings: no prediction log unless asked, no polling unless asked."""
    values: dict[str, Any] = {
        "model_dir": model_dir,
        "log_predictions": False,
        "poll_interval_s": 0,
        "max_batch_wait_ms": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def wait_ready(client: TestClient, timeout: float = 60) -> dict[str, Any]:
    """Poll /readyz until 200 (models load in the background after start-up)."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/readyz")
        if r.status_code == 200:
            return r.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready after {timeout}s: {r.status_code} {r.text}")
        time.sleep(0.02)


def wait_until(check: Any, timeout: float = 60, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def add_version_copy(model_dir: Path, name: str, source: int, target: int) -> Path:
    """Publish a copy of version ``source`` as ``target`` (same weights, new number).

    Written to a temporary folder and renamed into place, as the trainer publishes.
    """
    src = model_dir / name / str(source)
    tmp = model_dir / name / f".tmp-copy-{target}"
    shutil.copytree(src, tmp)
    meta = json.loads((tmp / METADATA_FILE).read_text())
    meta["version"] = target
    (tmp / METADATA_FILE).write_text(json.dumps(meta))
    dest = model_dir / name / str(target)
    tmp.rename(dest)
    return dest


def add_corrupt_version(model_dir: Path, name: str, source: int, target: int) -> Path:
    """A version whose metadata is fine but whose saved_model.pb is truncated garbage."""
    dest = add_version_copy(model_dir, name, source, target)
    pb = dest / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:200])
    return dest


@pytest.fixture
def model_repo_copy(tiny_model_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model repository, free to add or break versions in."""
    dest = tmp_path / "models"
    shutil.copytree(tiny_model_repo, dest)
    return dest


@pytest.fixture(scope="module")
def client(tiny_model_repo: Path) -> Iterator[TestClient]:
    """A ready app over the shared tiny model (read-only), one per test module."""
    with TestClient(create_app(make_settings(tiny_model_repo))) as c:
        wait_ready(c)
        yield c
