"""Every classified text reaches the prediction log, keyed by the request_id the client got."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.app.conftest import make_settings, wait_ready
from tests.app.test_metrics import parse, value


def _logging_settings(model_dir: Path, db: Path) -> Settings:
    return make_settings(
        model_dir,
        log_predictions=True,
        database_url=f"sqlite:///{db}",
        log_spill_path=db.with_suffix(".spill.jsonl"),
    )


def test_classified_texts_are_logged_with_the_response_request_id(
    tiny_model_repo: Path, tmp_path: Path
) -> None:
    db = tmp_path / "log.db"
    app = create_app(_logging_settings(tiny_model_repo, db))
    with TestClient(app) as c:
        wait_ready(c)
        texts = ["refund please", "I lost my card", "hello"]
        batch = c.post("/classify", json={"texts": texts}).json()
        single = c.post("/classify", json={"text": "reset my password"}).json()
        assert app.state.services.log_writer.flush(10)
        metrics = parse(c.get("/metrics").text)
    assert value(metrics, "textcls_log_rows_written_total") == 4
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT request_id, [index], text, label, confidence, fallback, model, version,"
            " batch_size FROM prediction_log ORDER BY id"
        ).fetchall()
    assert len(rows) == 4
    for i, (row, text, pred) in enumerate(zip(rows[:3], texts, batch["predictions"], strict=True)):
        request_id, index, logged_text, label, confidence, fallback, model, version, size = row
        assert request_id == batch["request_id"] and index == i
        assert logged_text == text and label == pred["label"]
        assert abs(confidence - pred["confidence"]) < 1e-9
        assert bool(fallback) == pred["fallback"]
        assert (model, version) == ("example", 1) and size >= 3
    assert rows[3][0] == single["request_id"] and rows[3][1] == 0


def test_client_supplied_request_id_is_the_logged_one(
    tiny_model_repo: Path, tmp_path: Path
) -> None:
    db = tmp_path / "log.db"
    app = create_app(_logging_settings(tiny_model_repo, db))
    with TestClient(app) as c:
        wait_ready(c)
        r = c.post("/classify", json={"text": "refund"}, headers={"X-Request-ID": "chat-42"})
        assert r.json()["request_id"] == "chat-42"
        assert r.headers["x-request-id"] == "chat-42"
        assert app.state.services.log_writer.flush(10)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT request_id, client FROM prediction_log").fetchall()
    # An open service (no keys, no rate limit) logs the peer's address as the client.
    assert rows == [("chat-42", "testclient")]
