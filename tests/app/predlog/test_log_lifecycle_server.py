"""The log's lifecycle in a running server (SQLite and PostgreSQL): pruning at start-up and while
serving, sampling with exact accounting, erasure through the admin API."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.main import create_app
from app.predlog.engine import create_db_engine
from app.predlog.feedback import record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade
from app.predlog.records import to_row
from app.predlog.reports import corrected_examples
from app.predlog.sampling import sampled_in
from app.predlog.tables import Feedback, LogAudit, PredictionLog
from tests.app.conftest import make_settings, wait_ready, wait_until
from tests.app.predlog.backends import db_url, postgres_url  # noqa: F401  (fixtures)
from tests.app.predlog.factories import make_record
from tests.app.test_metrics import parse, value

TEXTS = ["I lost my card", "refund please", "where is my money", "reset my password", "hello"]


def _any_label(model: str, version: int) -> list[str] | None:
    return None


def _insert_aged(engine: Engine, prefix: str, days: float, n: int) -> None:
    created = datetime.now(UTC) - timedelta(days=days)
    rows = [
        to_row(make_record(0, f"{prefix}{i}", f"text {prefix}{i}", created_at=created), "full")
        for i in range(n)
    ]
    with engine.begin() as conn:
        insert_rows(conn, rows)


def _rows(engine: Engine, prefix: str) -> list[PredictionLog]:
    with Session(engine) as s:
        return list(
            s.scalars(select(PredictionLog).where(PredictionLog.request_id.startswith(prefix)))
        )


class Load:
    """Two threads posting /classify until stopped; every answer's status is kept."""

    def __init__(self, client: TestClient, **body: Any) -> None:
        self.client = client
        self.body = body
        self.statuses: list[int] = []
        self.answers: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in range(2)]

    def _run(self, k: int) -> None:
        i = 0
        while not self._stop.is_set():
            text = f"{TEXTS[i % len(TEXTS)]} {k}-{i}"
            r = self.client.post("/classify", json={"text": text, **self.body})
            self.statuses.append(r.status_code)
            if r.status_code == 200:
                self.answers.append({**r.json(), "text": text})
            i += 1

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def test_server_prunes_at_start_up_and_while_serving(
    db_url: str,  # noqa: F811
    tiny_model_repo: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine)
    _insert_aged(engine, "old", 100, 30)
    _insert_aged(engine, "mid", 40, 20)
    record_feedback(engine, "old0", 0, label="lost_card", labels_for=_any_label)
    settings = make_settings(
        tiny_model_repo,
        log_predictions=True,
        database_url=db_url,
        log_spill_path=tmp_path / "spill.jsonl",
        log_retention_days=90,
        log_text_retention_days=30,
        log_prune_interval_s=0.3,
        log_prune_batch_rows=7,  # several transactions per pass
    )
    app = create_app(settings)
    with caplog.at_level(logging.INFO, logger="app.predlog.pruner"), TestClient(app) as c:
        wait_ready(c)
        pruner = app.state.services.log_writer.pruner
        wait_until(lambda: pruner.passes >= 1, timeout=20)
        # Start-up: old rows gone but the one with feedback; 40-day texts blanked.
        assert [r.request_id for r in _rows(engine, "old")] == ["old0"]
        assert _rows(engine, "old")[0].text == "text old0"
        mid = _rows(engine, "mid")
        assert len(mid) == 20 and all(r.text is None and r.text_sha256 is None for r in mid)
        assert {r.label for r in mid} == {"card_arrival"}

        with Load(c) as load:
            time.sleep(0.3)
            passes = pruner.passes
            _insert_aged(engine, "late", 120, 40)  # rows that aged past the retention
            wait_until(lambda: pruner.passes >= passes + 2, timeout=20)
            wait_until(lambda: not _rows(engine, "late"), timeout=20)
            time.sleep(0.2)
        assert pruner.failures == 0
        assert load.statuses and set(load.statuses) == {200}
        assert app.state.services.log_writer.flush(10)
        metrics = parse(c.get("/metrics").text)
    startup = [r.getMessage() for r in caplog.records if "prediction log keeps" in r.getMessage()]
    assert startup == [
        "prediction log keeps rows 90 days, texts 30 days, rows with feedback forever"
    ]
    assert value(metrics, "textcls_log_rows_pruned_total", action="deleted") == 29 + 40
    # The start-up pass blanks the 20 mid texts. A pass that runs while the late rows are
    # being inserted may delete before they commit and blank after: then they count as
    # blanked once before the next pass deletes them.
    assert value(metrics, "textcls_log_rows_pruned_total", action="text_blanked") in (20, 60)
    with Session(engine) as s:
        answered = s.scalar(
            select(func.count())
            .where(PredictionLog.request_id.not_like("old%"))
            .where(PredictionLog.request_id.not_like("mid%"))
        )
    assert answered == len(load.answers)  # every answered prediction logged, none pruned
    engine.dispose()


def test_sampling_keeps_every_fallback_and_accounts_for_every_answer(
    db_url: str,  # noqa: F811
    tiny_model_repo: Path,
    tmp_path: Path,
) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine)
    settings = make_settings(
        tiny_model_repo,
        log_predictions=True,
        database_url=db_url,
        log_spill_path=tmp_path / "spill.jsonl",
        log_sample_rate=0.1,
    )
    app = create_app(settings)
    answers: list[dict[str, Any]] = []
    with TestClient(app) as c:
        wait_ready(c)
        for i in range(300):
            # Every third request asks for an impossible confidence: a hand-off.
            body: dict[str, Any] = {"texts": [f"{TEXTS[i % 5]} {i}", f"again {i}"]}
            if i % 3 == 0:
                body["threshold"] = 1.0
            r = c.post("/classify", json=body)
            assert r.status_code == 200
            answers.append({**r.json(), "texts": body["texts"]})
        assert app.state.services.log_writer.flush(10)
        metrics = parse(c.get("/metrics").text)

        predictions = [
            (a["request_id"], i, p, a["texts"][i])
            for a in answers
            for i, p in enumerate(a["predictions"])
        ]
        out = [x for x in predictions if not x[2]["fallback"] and not sampled_in(x[0], x[1], 0.1)]
        rid, index, pred, text = out[0]
        label = pred["label"]
        refused = c.post("/feedback", json={"request_id": rid, "index": index, "label": label})
        assert refused.status_code == 409, refused.text
        assert "was not logged" in refused.json()["detail"]
        assert "TEXTCLS_LOG_SAMPLE_RATE=0.1" in refused.json()["detail"]
        kept = c.post(
            "/feedback", json={"request_id": rid, "index": index, "label": label, "text": text}
        )
        assert kept.status_code == 201, kept.text
        assert kept.json()["predicted_label"] is None and kept.json()["correct"] is None
        assert kept.json()["model"] == "example"
        never = c.post("/feedback", json={"request_id": "x" * 20, "index": 0, "label": label})
        # A request id never answered: "not found", or "not logged" where sampling would
        # have left such a prediction out; the message says which.
        expected = 404 if sampled_in("x" * 20, 0, 0.1) else 409
        assert never.status_code == expected, never.text

    with Session(engine) as s:
        logged = {(r.request_id, r.index): r for r in s.scalars(select(PredictionLog))}
    fallbacks = [x for x in predictions if x[2]["fallback"]]
    assert len(fallbacks) >= 200
    assert all((rid, i) in logged for rid, i, _, _ in fallbacks)  # every hand-off logged
    sampled_out = value(metrics, "textcls_log_rows_sampled_out_total")
    assert len(logged) + sampled_out == len(predictions)  # exactly
    assert value(metrics, "textcls_log_rows_written_total") == len(logged)
    assert sampled_out == len(out)
    confident = len(predictions) - len(fallbacks)
    assert 0 < confident - sampled_out < confident * 0.3
    # The correction sent with its text is a training example.
    examples = corrected_examples(engine, datetime(1970, 1, 1, tzinfo=UTC))
    assert [(e.text, e.label, e.predicted_label) for e in examples] == [(text, label, None)]
    engine.dispose()


def test_admin_erase(
    db_url: str,  # noqa: F811
    tiny_model_repo: Path,
    tmp_path: Path,
) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine)
    settings = make_settings(
        tiny_model_repo,
        log_predictions=True,
        database_url=db_url,
        log_spill_path=tmp_path / "spill.jsonl",
        admin_api_key="adm1n-key",
    )
    admin = {"Authorization": "Bearer adm1n-key"}
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        rid = c.post("/classify", json={"texts": ["card lost", "Bob Jones here"]}).json()[
            "request_id"
        ]
        other = c.post("/classify", json={"text": "bye"}).json()["request_id"]
        label = c.post("/classify", json={"text": "x"}).json()["predictions"][0]["label"]
        assert (
            c.post("/feedback", json={"request_id": rid, "index": 1, "label": label}).status_code
            == 201
        )
        assert c.post("/admin/logs/erase", json={"client": "testclient"}).status_code == 401
        both = c.post("/admin/logs/erase", json={"client": "a", "request_id": rid}, headers=admin)
        assert both.status_code == 422
        dry = c.post(
            "/admin/logs/erase", json={"text_contains": "Bob Jones", "dry_run": True}, headers=admin
        )
        assert dry.status_code == 200, dry.text
        assert dry.json() == {
            "rows": 1,
            "feedback": 1,
            "dry_run": True,
            "selector": "text containing a 9-character string",
        }
        done = c.post("/admin/logs/erase", json={"request_id": rid}, headers=admin)
        assert done.json()["rows"] == 2 and done.json()["feedback"] == 1
    with Session(engine) as s:
        assert {r.request_id for r in s.scalars(select(PredictionLog))} >= {other}
        assert rid not in {r.request_id for r in s.scalars(select(PredictionLog))}
        assert s.scalar(select(func.count()).select_from(Feedback)) == 0
        audit = s.scalars(select(LogAudit)).one()
        assert (audit.rows, audit.feedback, audit.source) == (2, 1, "admin api")
    engine.dispose()
