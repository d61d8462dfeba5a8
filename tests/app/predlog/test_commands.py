"""``textcls db upgrade``, ``feedback export`` and ``logs stats`` against real databases."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.cli.logs import register
from app.predlog.engine import create_db_engine
from app.predlog.feedback import record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.migrate import alembic_config, current_revision
from app.predlog.records import LogTextMode, to_row
from tests.app.predlog.factories import make_record

runner = CliRunner()


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _any_label(model: str, version: int) -> list[str] | None:
    return None


def _fill(engine: Engine, log_text: LogTextMode = "full") -> None:
    """6 predictions in 3 requests, 2 fallbacks; 3 corrected (one twice), 2 of them rightly."""
    old = datetime(2020, 1, 1, tzinfo=UTC)
    records = [
        make_record(0, "r1", "my card is late", "card_arrival"),
        make_record(1, "r1", "lost it", "lost_card", fallback=True),
        make_record(0, "r2", "card not here", "card_arrival"),
        make_record(0, "r3", "hello", "other", fallback=True),
        make_record(1, "r3", "bye", "other"),
        make_record(0, "old", "ancient", "other", created_at=old),
    ]
    with engine.begin() as conn:
        insert_rows(conn, [to_row(r, log_text) for r in records])
    record_feedback(engine, "r1", 0, label="card_arrival", labels_for=_any_label)  # right
    record_feedback(engine, "r1", 1, label="card_arrival", labels_for=_any_label)  # wrong, then
    record_feedback(
        engine, "r1", 1, label="lost_card", labels_for=_any_label
    )  # corrected: right after all
    record_feedback(engine, "r3", 0, label="greeting", labels_for=_any_label)  # wrong


def test_db_upgrade_creates_the_schema(db_url: str) -> None:
    result = runner.invoke(_cli(), ["db", "upgrade", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"revision {head}" in result.output
    assert current_revision(create_db_engine(db_url)) == head


def test_logs_stats(engine: Engine, db_url: str) -> None:
    _fill(engine)
    args = ["logs", "stats", "--since", "2026-01-01", "--json", "--database-url", db_url]
    result = runner.invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["requests"] == 3 and stats["predictions"] == 5
    assert stats["fallback_rate"] == pytest.approx(2 / 5)
    assert stats["labels"] == {"card_arrival": 2, "other": 2, "lost_card": 1}
    assert stats["with_feedback"] == 3 and stats["accuracy"] == pytest.approx(2 / 3)
    text = runner.invoke(_cli(), ["logs", "stats", "--database-url", db_url])
    assert text.exit_code == 0 and "predictions      6" in text.output


def test_feedback_export_writes_training_data(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _fill(engine)
    out = tmp_path / "out" / "corrections.csv"
    args = ["feedback", "export", "--since", "2020-01-01", "--out", str(out)]
    result = runner.invoke(_cli(), [*args, "--database-url", db_url])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["text", "label"],
        ["my card is late", "card_arrival"],
        ["lost it", "lost_card"],
        ["hello", "greeting"],
    ]


@pytest.mark.parametrize("log_text", ["hash", "none"])
def test_feedback_export_without_texts_is_a_clear_error(
    engine: Engine, db_url: str, tmp_path: Path, log_text: LogTextMode
) -> None:
    _fill(engine, log_text)
    out = tmp_path / "c.csv"
    base = ["feedback", "export", "--out", str(out), "--database-url", db_url]
    result = runner.invoke(_cli(), base)
    assert result.exit_code == 1
    assert "TEXTCLS_LOG_TEXT" in result.output and not out.exists()
    skipped = runner.invoke(_cli(), [*base, "--skip-missing-text"])
    assert skipped.exit_code == 0 and "3 without text left out" in skipped.output


def test_bad_input_and_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    bad_date = runner.invoke(_cli(), ["logs", "stats", "--since", "yesterday"])
    assert bad_date.exit_code == 2 and "not a date" in bad_date.output
    empty = runner.invoke(_cli(), ["logs", "stats", "--database-url", url])
    assert empty.exit_code == 1 and "textcls db upgrade" in empty.output
    bad_url = runner.invoke(_cli(), ["logs", "stats", "--database-url", "nonsense://"])
    assert bad_url.exit_code == 2 and "invalid database URL" in bad_url.output
