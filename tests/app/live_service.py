"""Helpers for tests that run the whole service: test settings, waiting for readiness."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings


def make_settings(tmp_path: Path, model_dir: Path, **overrides: object) -> Settings:
    """Settings with the log in ``tmp_path``, no polling, and nothing read from ``.env``."""
    values: dict[str, object] = {
        "model_dir": model_dir,
        "database_url": f"sqlite:///{tmp_path / 'log.db'}",
        "log_spill_path": tmp_path / "spill.jsonl",
        "poll_interval_s": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def wait_ready(client: TestClient, timeout_s: float = 60.0) -> None:
    """Block until /readyz says 200 (models load in the background after start-up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get("/readyz")
        if r.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {timeout_s} s: {r.text}")
        time.sleep(0.05)
