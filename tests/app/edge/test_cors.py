"""CORS: off by default; TEXTCLS_CORS_ORIGINS lets those origins call, with our headers exposed."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.live_service import make_settings

PREFLIGHT = {
    "Origin": "https://chat.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,x-request-id",
}


def test_cors_is_off_by_default(tmp_path: Path) -> None:
    # No lifespan (no `with`): CORS answers before any route, so no model is needed.
    client = TestClient(create_app(make_settings(tmp_path, tmp_path)))
    r = client.options("/classify", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in r.headers
    r = client.get("/healthz", headers={"Origin": "https://chat.example.com"})
    assert "access-control-allow-origin" not in r.headers


def test_configured_origins_get_cors_headers(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, tmp_path, cors_origins="https://chat.example.com, https://ops.example.com"
    )
    client = TestClient(create_app(settings))
    r = client.options("/classify", headers=PREFLIGHT)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://chat.example.com"
    assert "x-request-id" in r.headers["access-control-allow-headers"].lower()
    r = client.get("/healthz", headers={"Origin": "https://ops.example.com"})
    assert r.headers["access-control-allow-origin"] == "https://ops.example.com"
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    r = client.options("/classify", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers
