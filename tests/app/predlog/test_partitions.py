"""PostgreSQL native partitioning of the log: conversion, inserts, partitions made ahead,
old partitions dropped whole (rows with feedback kept), and the server's pruner doing it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli.logs import register
from app.config import Settings
from app.predlog.engine import create_db_engine
from app.predlog.feedback import record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade
from app.predlog.partitions import (
    DEFAULT_PARTITION,
    is_partitioned,
    manage_partitions,
    partitions,
)
from app.predlog.pruner import LogPruner
from app.predlog.records import to_row
from app.predlog.retention import RetentionPolicy
from app.predlog.tables import PredictionLog
from tests.app.predlog.factories import make_record

pytestmark = pytest.mark.postgres
runner = CliRunner()


def _any_label(model: str, version: int) -> list[str] | None:
    return None


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _insert(engine: Engine, *ages: tuple[str, float]) -> None:
    now = datetime.now(UTC)
    rows = [
        to_row(make_record(0, rid, f"text {rid}", created_at=now - timedelta(days=d)), "full")
        for rid, d in ages
    ]
    with engine.begin() as conn:
        insert_rows(conn, rows)


def _ids(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return set(s.scalars(select(PredictionLog.request_id)))


@pytest.fixture
def pg(postgres_url: str) -> Engine:
    engine = create_db_engine(postgres_url)
    upgrade(engine)
    return engine


def test_partition_converts_the_table_and_inserts_still_skip_duplicates(
    pg: Engine, postgres_url: str
) -> None:
    _insert(pg, ("a", 10), ("b", 2), ("c", 0))
    result = runner.invoke(
        _cli(), ["logs", "partition", "--days", "1", "--database-url", postgres_url]
    )
    assert result.exit_code == 0, result.output
    assert "3 rows moved" in result.output
    assert is_partitioned(pg)
    with pg.begin() as conn:
        parts = partitions(conn)
    now = datetime.now(UTC)
    assert parts[0].start <= now - timedelta(days=10) < parts[0].end
    assert parts[-1].end >= now + timedelta(days=3)
    assert all(p.end - p.start == timedelta(days=1) for p in parts)
    assert _ids(pg) == {"a", "b", "c"}
    # New rows land, replays are skipped, and the id sequence carries on.
    row = to_row(make_record(0, "d", "new text"), "full")
    with pg.begin() as conn:
        assert insert_rows(conn, [row]) == 1
        assert insert_rows(conn, [row]) == 0
        ids = conn.execute(text("SELECT id FROM prediction_log ORDER BY id")).scalars().all()
    assert ids == sorted(set(ids)) and len(ids) == 4
    again = runner.invoke(_cli(), ["logs", "partition", "--database-url", postgres_url])
    assert again.exit_code == 2 and "already" in again.output


def test_old_partitions_are_dropped_and_rows_with_feedback_kept(pg: Engine) -> None:
    from app.predlog.partitions import partition_table

    _insert(pg, ("old", 40), ("old_fb", 40), ("older", 60), ("new", 1))
    record_feedback(pg, "old_fb", 0, label="lost_card", labels_for=_any_label)
    partition_table(pg, days=7)
    policy = RetentionPolicy(row_days=30)
    now = datetime.now(UTC)
    dry = manage_partitions(pg, policy, now=now, dry_run=True)
    assert dry.dropped >= 2 and dry.rows_deleted == 2
    assert _ids(pg) == {"old", "old_fb", "older", "new"}
    done = manage_partitions(pg, policy, now=now)
    assert (done.dropped, done.rows_deleted) == (dry.dropped, 2)
    assert _ids(pg) == {"old_fb", "new"}
    with pg.begin() as conn:
        parts = partitions(conn)
        in_default = (
            conn.execute(text(f"SELECT request_id FROM {DEFAULT_PARTITION}")).scalars().all()
        )
    assert parts[0].end > now - timedelta(days=30)  # nothing wholly past the retention left
    assert in_default == ["old_fb"]
    # Days later, the pruner creates the partitions ahead that are missing by then.
    later = manage_partitions(pg, policy, now=now + timedelta(days=20))
    assert later.created >= 2


def test_server_pruner_drops_partitions(pg: Engine, postgres_url: str, tmp_path: Path) -> None:
    from app.predlog.partitions import partition_table

    _insert(pg, ("x", 100), ("y", 95), ("z", 0))
    partition_table(pg, days=1)
    with pg.begin() as conn:
        before = len(partitions(conn))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=postgres_url, log_retention_days=90
    )
    pruner = LogPruner(settings)
    pruner.run_once(pg)
    # Days -100 to -90: the two rows' partitions and the empty ones between them.
    assert pruner.failures == 0 and pruner.partitions_dropped in (10, 11)
    assert pruner.total.deleted == 2 and _ids(pg) == {"z"}
    with pg.begin() as conn:
        assert len(partitions(conn)) == before - pruner.partitions_dropped
    with Session(pg) as s:
        assert s.scalar(select(func.count()).select_from(PredictionLog)) == 1


def test_partition_refuses_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    upgrade(create_db_engine(url))
    result = runner.invoke(_cli(), ["logs", "partition", "--database-url", url])
    assert result.exit_code == 2 and "needs PostgreSQL" in result.output


def test_partition_changes_give_up_behind_a_long_query(pg: Engine) -> None:
    """A report holding the table must not make the pruner's DDL queue every INSERT."""
    from app.predlog.partitions import partition_table

    _insert(pg, ("old", 40), ("new", 0))
    partition_table(pg, days=7)
    with pg.connect() as reader:
        reader.execute(text("SELECT count(*) FROM prediction_log"))  # holds ACCESS SHARE
        started = time.monotonic()
        with pytest.raises(OperationalError, match="lock timeout"):
            manage_partitions(pg, RetentionPolicy(row_days=30), now=datetime.now(UTC))
        assert time.monotonic() - started < 10
        reader.rollback()
    assert manage_partitions(pg, RetentionPolicy(row_days=30), now=datetime.now(UTC)).dropped
    assert _ids(pg) == {"new"}


def test_prune_command_drops_partitions(
    pg: Engine, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.predlog.partitions import partition_table

    monkeypatch.setenv("TEXTCLS_LOG_TEXT_RETENTION_DAYS", "0")
    _insert(pg, ("old", 40), ("new", 0))
    partition_table(pg, days=7)
    args = ["logs", "prune", "--older-than", "30d", "--database-url", postgres_url]
    dry = runner.invoke(_cli(), [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "partitions would be dropped" in dry.output and _ids(pg) == {"old", "new"}
    assert "1 rows would be deleted" in dry.output
    done = runner.invoke(_cli(), args)
    assert done.exit_code == 0, done.output
    assert "partitions were dropped" in done.output and _ids(pg) == {"new"}
    assert "1 rows were deleted" in done.output
