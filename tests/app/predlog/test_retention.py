"""Retention on both backends: old rows deleted, old texts blanked, rows with feedback kept."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.predlog.feedback import record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.records import to_row
from app.predlog.retention import RetentionPolicy, prune
from app.predlog.tables import Feedback, PredictionLog
from app.predlog.writer import PredictionLogWriter
from tests.app.predlog.factories import make_record

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _any_label(model: str, version: int) -> list[str] | None:
    return None


def _insert(engine: Engine, *ages: tuple[str, float]) -> None:
    """One row per ``(request_id, age in days)``."""
    rows = [
        to_row(make_record(0, rid, f"text of {rid}", created_at=NOW - timedelta(days=age)), "full")
        for rid, age in ages
    ]
    with engine.begin() as conn:
        insert_rows(conn, rows)


def _state(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    with Session(engine) as s:
        return {
            r.request_id: (r.text, r.text_sha256)
            for r in s.scalars(select(PredictionLog).order_by(PredictionLog.request_id))
        }


def test_rows_past_retention_go_texts_expire_and_feedback_rows_stay(engine: Engine) -> None:
    _insert(engine, ("old", 100), ("old_fb", 100), ("mid", 40), ("mid_fb", 40), ("new", 10))
    record_feedback(engine, "old_fb", 0, label="lost_card", labels_for=_any_label)
    record_feedback(engine, "mid_fb", 0, label="lost_card", labels_for=_any_label)
    policy = RetentionPolicy(row_days=90, text_days=30)
    before = _state(engine)

    dry = prune(engine, policy, now=NOW, batch_rows=100, dry_run=True)
    assert (dry.deleted, dry.text_blanked, dry.feedback_deleted) == (1, 1, 0)
    assert _state(engine) == before  # a dry run changes nothing

    done = prune(engine, policy, now=NOW, batch_rows=100)
    assert (done.deleted, done.text_blanked, done.feedback_deleted) == (1, 1, 0)
    after = _state(engine)
    assert set(after) == {"old_fb", "mid", "mid_fb", "new"}
    assert after["mid"] == (None, None)  # text and hash blanked
    assert after["old_fb"] == before["old_fb"] and after["mid_fb"] == before["mid_fb"]
    assert after["new"] == before["new"]
    with Session(engine) as s:
        mid = s.scalars(select(PredictionLog).where(PredictionLog.request_id == "mid")).one()
        assert (mid.label, mid.confidence, mid.model, mid.version) == (
            "card_arrival",
            0.75,
            "example",
            1,
        )
    # A second pass finds nothing more.
    again = prune(engine, policy, now=NOW, batch_rows=100)
    assert (again.deleted, again.text_blanked) == (0, 0)


def test_feedback_retention_expires_feedback_then_its_rows(engine: Engine) -> None:
    _insert(engine, ("ancient", 400), ("recent", 100))
    for rid in ("ancient", "recent"):
        record_feedback(engine, rid, 0, label="lost_card", labels_for=_any_label)
    with engine.begin() as conn:  # the first correction was given long ago
        conn.execute(
            Feedback.__table__.update()
            .where(Feedback.request_id == "ancient")
            .values(created_at=NOW - timedelta(days=399))
        )
    policy = RetentionPolicy(row_days=90, text_days=30, feedback_days=365)
    counts = prune(engine, policy, now=NOW, batch_rows=100)
    assert (counts.feedback_deleted, counts.deleted) == (1, 1)
    assert set(_state(engine)) == {"recent"}
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Feedback)) == 1


@pytest.mark.parametrize("batch_rows", [1, 3])
def test_prunes_in_bounded_batches(engine: Engine, batch_rows: int) -> None:
    _insert(engine, *((f"r{i}", 50 + i) for i in range(7)))
    seen: list[tuple[str, int]] = []
    counts = prune(
        engine,
        RetentionPolicy(row_days=30),
        now=NOW,
        batch_rows=batch_rows,
        on_batch=lambda action, n: seen.append((action, n)),
    )
    assert counts.deleted == 7 and _state(engine) == {}
    assert all(n <= batch_rows for _, n in seen) and sum(n for _, n in seen) == 7


def test_nothing_expires_when_retention_is_off(engine: Engine) -> None:
    _insert(engine, ("ancient", 4000))
    policy = RetentionPolicy()
    assert not policy.active
    counts = prune(engine, policy, now=NOW, batch_rows=10)
    assert (counts.deleted, counts.text_blanked) == (0, 0) and set(_state(engine)) == {"ancient"}


def test_describe_says_what_is_kept() -> None:
    assert RetentionPolicy(row_days=90, text_days=30).describe("full") == (
        "prediction log keeps rows 90 days, texts 30 days, rows with feedback forever"
    )
    assert RetentionPolicy().describe("none") == (
        "prediction log keeps rows forever, no texts (TEXTCLS_LOG_TEXT=none), "
        "rows with feedback forever"
    )
    assert (
        RetentionPolicy(row_days=7, text_days=30)
        .describe("hash")
        .startswith("prediction log keeps rows 7 days, text hashes 7 days")
    )


def test_sqlite_file_stops_growing_under_steady_load_with_retention(tmp_path: Path) -> None:
    """Rows written at a steady rate, kept 1.5 s: once the retention window is full the file
    (with its WAL) stays the same size, as free pages are reused or handed back."""
    db = tmp_path / "log.db"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite:///{db}",
        log_spill_path=tmp_path / "spill.jsonl",
        log_retention_days=1.5 / 86400,
        log_text_retention_days=0,
        log_prune_interval_s=0.25,
    )
    writer = PredictionLogWriter(settings)
    writer.start()
    sizes: list[int] = []
    text = "please tell me where my new card is, it has been two weeks " * 4
    try:
        for tick in range(60):  # 6 s at 1,000 rows/s
            writer.submit(
                [
                    make_record(0, f"t{tick}-{i}", text, created_at=datetime.now(UTC))
                    for i in range(100)
                ]
            )
            time.sleep(0.1)
            sizes.append(sum(p.stat().st_size for p in tmp_path.glob("log.db*")))
        assert writer.flush(10)
    finally:
        writer.stop()
    assert writer.pruner.passes >= 10 and writer.pruner.total.deleted > 3000
    window = max(sizes[25:35])  # the retention window has filled once
    assert max(sizes[45:]) <= window * 1.2, str(sizes)
    with sqlite3.connect(db) as conn:
        kept = conn.execute("SELECT count(*) FROM prediction_log").fetchone()[0]
    assert kept < 3000  # of 6,000 written
