"""A real textcls server in a thread and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from tests.app.live_service import make_settings
from tests.live_server import live_server as live_server_at

API_KEY = "browser-key"
CHROMIUM_ENV = "TEXTCLS_TEST_CHROMIUM"
VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> str:
    """Debian's Chromium (``apt-get install chromium``); skips locally, fails in CI, if absent."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Chromium at {path}; CI installs it with apt-get install chromium")
        pytest.skip(f"no Chromium at {path} (apt-get install chromium, or set {CHROMIUM_ENV})")
    return path


@dataclass
class LiveServer:
    url: str
    settings: Settings
    app: Any

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(f"{self.url}{path}", json=body, headers={"X-API-Key": API_KEY})
        assert r.status_code < 300, r.text
        return r.json()


@pytest.fixture(scope="module")
def live_server(
    tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """uvicorn on a free port with the prediction log in SQLite and one API key."""
    settings = make_settings(
        tmp_path_factory.mktemp("browser"),
        tiny_model_repo,
        api_keys=f"reviewer:{API_KEY}",
        max_batch_wait_ms=0,
    )
    app = create_app(settings)
    with live_server_at(app) as url:
        yield LiveServer(url, settings, app)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True)
        yield b
        b.close()
