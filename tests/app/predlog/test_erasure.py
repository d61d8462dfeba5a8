"""``textcls logs erase`` and ``logs prune`` on both backends: exactly the matching rows go,
their feedback with them, an audit row is written, and ``--dry-run`` removes nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import typer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli.logs import register
from app.predlog.feedback import Unlogged, record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.records import LogTextMode, PredictionRecord, to_row
from app.predlog.sampling import sampled_in
from app.predlog.tables import Feedback, LogAudit, PredictionLog
from tests.app.predlog.factories import make_record

runner = CliRunner()


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _any_label(model: str, version: int) -> list[str] | None:
    return None


def _record(rid: str, index: int, text: str, client: str, days: float = 0) -> PredictionRecord:
    r = make_record(index, rid, text, created_at=datetime.now(UTC) - timedelta(days=days))
    r.client = client
    return r


def _fill(engine: Engine, log_text: LogTextMode = "full") -> None:
    records = [
        _record("r1", 0, "my card 4111 is lost, Alice Smith here", "chat"),
        _record("r1", 1, "and refund please", "chat"),
        _record("r2", 0, "alice smith wants a refund", "chat"),  # other case: not a match
        _record("r3", 0, "Alice Smith again", "email"),
        _record("r4", 0, "unrelated", "email"),
    ]
    with engine.begin() as conn:
        insert_rows(conn, [to_row(r, log_text) for r in records])
    for rid, index in (("r1", 0), ("r1", 1), ("r3", 0), ("r4", 0)):
        record_feedback(engine, rid, index, label="lost_card", labels_for=_any_label)


def _left(engine: Engine) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    with Session(engine) as s:
        rows = {(r.request_id, r.index) for r in s.scalars(select(PredictionLog))}
        fb = {(f.request_id, f.index) for f in s.scalars(select(Feedback))}
    return rows, fb


def _audit(engine: Engine) -> list[LogAudit]:
    with Session(engine) as s:
        return list(s.scalars(select(LogAudit).order_by(LogAudit.id)))


@pytest.mark.parametrize(
    ("option", "value", "rows", "feedback", "left"),
    [
        ("--request-id", "r1", 2, 2, {("r2", 0), ("r3", 0), ("r4", 0)}),
        ("--text-contains", "Alice Smith", 2, 2, {("r1", 1), ("r2", 0), ("r4", 0)}),
        ("--client", "email", 2, 2, {("r1", 0), ("r1", 1), ("r2", 0)}),
    ],
)
def test_erase_removes_exactly_the_matching_rows_and_their_feedback(
    engine: Engine,
    db_url: str,
    option: str,
    value: str,
    rows: int,
    feedback: int,
    left: set[tuple[str, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _fill(engine)
    before = _left(engine)
    dry = runner.invoke(
        _cli(), ["logs", "erase", option, value, "--dry-run", "--database-url", db_url]
    )
    assert dry.exit_code == 0, dry.output
    assert f"would erase {rows} prediction rows and {feedback} feedback rows" in dry.output
    assert _left(engine) == before and _audit(engine) == []

    with caplog.at_level(logging.WARNING, logger="app.predlog.erasure"):
        result = runner.invoke(_cli(), ["logs", "erase", option, value, "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert f"erased {rows} prediction rows and {feedback} feedback rows" in result.output
    remaining, remaining_fb = _left(engine)
    assert remaining == left
    assert remaining_fb == before[1] & left
    (audit,) = _audit(engine)
    assert (audit.action, audit.rows, audit.feedback, audit.source) == (
        "erase",
        rows,
        feedback,
        "cli",
    )
    # The audit says what was asked and when, never the erased text.
    assert audit.created_at > datetime.now(UTC) - timedelta(minutes=1)
    listed = runner.invoke(_cli(), ["logs", "audit", "--database-url", db_url])
    assert listed.exit_code == 0, listed.output
    assert f"erase  {audit.selector}  {rows} rows, {feedback} feedback  (cli)" in listed.output
    logged = caplog.text + audit.selector + listed.output
    if option == "--text-contains":
        assert "Alice" not in logged and "11-character" in audit.selector
    else:
        assert value in audit.selector


def test_erase_by_text_finds_hashed_rows_and_texts_sent_with_feedback(
    engine: Engine, db_url: str
) -> None:
    _fill(engine, "hash")  # only hashes: a whole text matches through its hash
    unlogged = Unlogged(sample_rate=0.0, model="example")
    assert not sampled_in("gone", 0, 0.0)
    record_feedback(
        engine,
        "gone",
        0,
        label="lost_card",
        labels_for=_any_label,
        text="unrelated",
        unlogged=unlogged,
    )
    result = runner.invoke(
        _cli(), ["logs", "erase", "--text-contains", "unrelated", "--database-url", db_url]
    )
    assert result.exit_code == 0, result.output
    rows, fb = _left(engine)
    assert ("r4", 0) not in rows and ("r4", 0) not in fb and ("gone", 0) not in fb
    assert "erased 1 prediction rows and 2 feedback rows" in result.output


def test_erase_needs_exactly_one_selector(db_url: str) -> None:
    for args in ([], ["--client", "a", "--request-id", "b"], ["--client", ""]):
        result = runner.invoke(_cli(), ["logs", "erase", *args, "--database-url", db_url])
        assert result.exit_code == 2 and "exactly one" in result.output


def test_prune_command_applies_the_retention(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXTCLS_LOG_TEXT_RETENTION_DAYS", "0")
    with engine.begin() as conn:
        insert_rows(
            conn,
            [
                to_row(_record("old", 0, "old text", "chat", days=45), "full"),
                to_row(_record("new", 0, "new text", "chat", days=5), "full"),
            ],
        )
    dry = runner.invoke(
        _cli(), ["logs", "prune", "--older-than", "30d", "--dry-run", "--database-url", db_url]
    )
    assert dry.exit_code == 0, dry.output
    assert "1 rows would be deleted" in dry.output
    assert _left(engine)[0] == {("old", 0), ("new", 0)}
    result = runner.invoke(
        _cli(), ["logs", "prune", "--older-than", "4w", "--database-url", db_url]
    )
    assert result.exit_code == 0, result.output
    assert "keeps rows 28 days" in result.output and "1 rows were deleted" in result.output
    assert _left(engine)[0] == {("new", 0)}
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(PredictionLog)) == 1
    bad = runner.invoke(_cli(), ["logs", "prune", "--older-than", "soon", "--database-url", db_url])
    assert bad.exit_code == 2 and "--older-than 'soon'" in bad.output
