"""API keys: 401s, both header forms, the keys file, /metrics' own key, open mode, no key leaks."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.config import ConfigError
from app.edge.auth import KeyStore, parse_key_pairs, read_key_file
from app.main import create_app
from tests.app.live_service import make_settings, wait_ready

CHAT_KEY = "chat-secret-0123456789abcdef"
BATCH_KEY = "batch-secret-fedcba9876543210"
METRICS_KEY = "metrics-secret-00000000"


@pytest.fixture(scope="module")
def secured(
    tiny_model_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Path]]:
    tmp = tmp_path_factory.mktemp("auth")
    keys_file = tmp / "keys"
    digest = hashlib.sha256(BATCH_KEY.encode()).hexdigest()
    keys_file.write_text(f"# clients\n\nbatch:{digest}\n")
    settings = make_settings(
        tmp,
        tiny_model_repo,
        api_keys=f"chat:{CHAT_KEY}",
        api_keys_file=keys_file,
        metrics_api_key=METRICS_KEY,
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client, tmp / "log.db"


def test_no_key_is_401_with_www_authenticate(secured: tuple[TestClient, Path]) -> None:
    client, _ = secured
    r = client.post("/classify", json={"text": "where is my card"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "API key" in r.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-key"},
        {"X-API-Key": "wrong-key"},
        {"X-API-Key": CHAT_KEY[:-1]},  # a prefix of a real key
        {"Authorization": f"Basic {CHAT_KEY}"},  # right key, wrong scheme
        {"Authorization": f"Bearer {METRICS_KEY}"},  # the metrics key opens only /metrics
    ],
)
def test_wrong_key_is_401(secured: tuple[TestClient, Path], headers: dict[str, str]) -> None:
    client, _ = secured
    for path, method in (("/classify", "POST"), ("/models", "GET")):
        r = client.request(method, path, headers=headers, json={"text": "hello"})
        assert r.status_code == 401, (path, r.text)
        assert "www-authenticate" in r.headers


def test_both_header_forms_and_the_keys_file_let_clients_in(
    secured: tuple[TestClient, Path],
) -> None:
    client, _ = secured
    for headers in (
        {"Authorization": f"Bearer {CHAT_KEY}"},
        {"X-API-Key": CHAT_KEY},
        {"Authorization": f"Bearer {BATCH_KEY}"},  # from the file of digests
    ):
        r = client.post("/classify", json={"text": "where is my card"}, headers=headers)
        assert r.status_code == 200, r.text
        assert client.get("/models", headers=headers).status_code == 200


def test_probes_and_docs_stay_open(secured: tuple[TestClient, Path]) -> None:
    client, _ = secured
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_metrics_needs_its_own_key(secured: tuple[TestClient, Path]) -> None:
    client, _ = secured
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": CHAT_KEY}).status_code == 401
    r = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"})
    assert r.status_code == 200
    assert "textcls_" in r.text


def test_openapi_declares_the_401_and_the_key_schemes(secured: tuple[TestClient, Path]) -> None:
    client, _ = secured
    doc = client.get("/openapi.json").json()
    assert "401" in doc["paths"]["/classify"]["post"]["responses"]
    assert "401" not in doc["paths"]["/healthz"]["get"]["responses"]
    schemes = doc["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}


def test_client_name_is_logged_and_the_key_never_is(
    tiny_model_repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, tiny_model_repo, api_keys=f"chat:{CHAT_KEY}")
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        r = client.post(
            "/classify",
            json={"texts": ["refund please", "card lost"]},
            headers={"X-API-Key": CHAT_KEY},
        )
        assert r.status_code == 200
        client.post("/classify", json={"text": "x"}, headers={"X-API-Key": "not-" + CHAT_KEY})
    # Leaving the client stops the app, which flushes the prediction log.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM prediction_log")).mappings().all()
    engine.dispose()
    assert [row["client"] for row in rows] == ["chat", "chat"]
    assert all(CHAT_KEY not in str(dict(row)) for row in rows)
    assert CHAT_KEY not in caplog.text
    assert CHAT_KEY not in repr(settings) and CHAT_KEY not in str(settings.model_dump())


def test_open_service_warns_at_start_up(
    tiny_model_repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.edge.auth")
    app = create_app(make_settings(tmp_path, tiny_model_repo))
    assert any(r.levelno == logging.WARNING and "open" in r.getMessage() for r in caplog.records)
    with TestClient(app) as client:
        wait_ready(client)
        r = client.post("/classify", json={"text": "where is my card"})
        assert r.status_code == 200
        assert client.get("/metrics").status_code == 200


def test_key_store_compares_every_key() -> None:
    keys = KeyStore(parse_key_pairs("a:k1, b:k2 ,c:k3"))
    assert keys.identify("k1") == "a"
    assert keys.identify("k3") == "c"
    assert keys.identify("k4") is None
    assert keys.identify("") is None
    assert not keys.is_open and KeyStore([]).is_open


@pytest.mark.parametrize(
    "value, message",
    [
        ("chat", "entry 1: expected name:key"),
        ("a:k1,chat:", "entry 2: expected name:key"),
        ("bad name:k", "client name"),
        ("a:k1,a:k2", "repeated: a"),
        ("a:same,b:same", "same key"),
    ],
)
def test_bad_key_settings_fail_clearly_without_quoting_keys(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        KeyStore(parse_key_pairs(value))
    assert "k1" not in str(info.value) and "same" not in str(info.value).replace("same key", "")


def test_bad_keys_file_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("ok:" + "a" * 64 + "\nbroken:not-a-digest\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_key_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_key_file(tmp_path / "missing")


def test_serve_refuses_bad_key_settings_before_starting(tmp_path: Path) -> None:
    env = {**os.environ, "TEXTCLS_API_KEYS": "chat:ok-key,broken-entry-secret"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--model-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "TEXTCLS_API_KEYS entry 2: expected name:key" in done.stderr
    assert "secret" not in done.stderr and "ok-key" not in done.stderr
