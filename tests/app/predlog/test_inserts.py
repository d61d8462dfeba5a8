"""The idempotent batch INSERT: one call per batch, duplicates skipped, values kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from app.predlog.inserts import MAX_ROWS_PER_STATEMENT, insert_rows
from app.predlog.records import to_row
from app.predlog.tables import PredictionLog
from tests.app.predlog.factories import make_record, make_records


def _count(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(PredictionLog)) or 0


def test_one_statement_per_batch_and_duplicates_are_skipped(engine: Engine) -> None:
    """SQLite: one multi-row INSERT; PostgreSQL: one executemany (a single pipeline)."""
    statements: list[str] = []
    pipelined = engine.dialect.name == "postgresql"

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO prediction_log"):
            statements.append(statement)
            assert executemany == pipelined

    event.listen(engine, "before_cursor_execute", on_execute)
    rows = [to_row(r, "full") for r in make_records(300, per_request=3)]
    with engine.begin() as conn:
        assert insert_rows(conn, rows) == 300
    assert len(statements) == 1
    with engine.begin() as conn:  # replaying the same rows (plus new ones) adds only the new
        extra = [to_row(r, "full") for r in make_records(5)]
        assert insert_rows(conn, rows[:100] + extra) == 5
    assert len(statements) == 2
    assert _count(engine) == 305


def test_batches_beyond_the_parameter_limit_are_split(engine: Engine) -> None:
    n = MAX_ROWS_PER_STATEMENT + 10
    with engine.begin() as conn:
        assert insert_rows(conn, [to_row(r, "full") for r in make_records(n)]) == n
    assert _count(engine) == n


def test_values_round_trip(engine: Engine) -> None:
    local = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    record = make_record(index=4, fallback=True, created_at=local, text="héllo ✓")
    with engine.begin() as conn:
        insert_rows(conn, [to_row(record, "full")])
    with Session(engine) as s:
        row = s.scalars(select(PredictionLog)).one()
    assert row.request_id == record.request_id and row.index == 4
    assert row.created_at == local and row.created_at.tzinfo is not None
    assert row.created_at.utcoffset() == timedelta(0)
    assert row.text == "héllo ✓" and row.fallback is True and row.client == "tests"
    assert row.ranking == [
        {"label": "card_arrival", "confidence": 0.75},
        {"label": "other", "confidence": 0.25},
    ]
    assert (row.model, row.version, row.batch_size) == ("example", 1, 8)
    assert row.latency_ms == 3.5 and row.confidence == 0.75
    with Session(engine) as s:  # UTC comparisons work on both backends
        after = datetime(2026, 3, 1, 10, 30, 15, tzinfo=UTC)
        assert s.scalar(select(func.count()).where(PredictionLog.created_at >= after)) == 1
        later = after + timedelta(seconds=1)
        assert s.scalar(select(func.count()).where(PredictionLog.created_at >= later)) == 0
