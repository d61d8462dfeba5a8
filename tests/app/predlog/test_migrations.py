"""The Alembic migrations shipped in the package: they build exactly the tables of the models."""

from __future__ import annotations

import glob
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from app.predlog.engine import create_db_engine
from app.predlog.inserts import insert_rows
from app.predlog.migrate import MIGRATIONS_DIR, alembic_config, current_revision, downgrade, upgrade
from app.predlog.records import to_row
from app.predlog.tables import Base
from tests.app.predlog.factories import make_record

ROOT = Path(__file__).resolve().parents[3]


def test_upgrade_builds_the_model_tables_and_is_repeatable(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the migrations must not depend on the working directory
    engine = create_db_engine(db_url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_downgrade_removes_the_tables(db_url: str) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine)
    downgrade(engine, "base")
    names = set(inspect(engine).get_table_names())
    assert not names & {"prediction_log", "feedback"}
    upgrade(engine)
    assert {"prediction_log", "feedback"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_every_migration_file_is_package_data() -> None:
    # An installed wheel must carry env.py, the template and the versions.
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["app"]
    files = [
        p.relative_to(ROOT / "app").as_posix()
        for p in MIGRATIONS_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert any(f.startswith("predlog/migrations/versions/") for f in files)
    # setuptools expands package-data patterns as recursive globs, like glob.glob does.
    covered = {
        Path(m).relative_to(ROOT / "app").as_posix()
        for pat in patterns
        for m in glob.glob(str(ROOT / "app" / pat), recursive=True)
    }
    assert set(files) <= covered, set(files) - covered


def test_0002_adds_role_with_existing_rows_primary(db_url: str) -> None:
    """Rows logged before the role column become 'primary'; a shadow row may share their key."""
    engine = create_db_engine(db_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO prediction_log (request_id, "index", created_at, client, model, '
                "version, text, text_sha256, label, confidence, fallback, ranking, latency_ms, "
                "batch_size) VALUES ('old', 0, :t, 'c', 'example', 1, 'hi', NULL, 'a', 0.9, "
                ":f, :r, 1.0, 1)"
            ),
            {"t": datetime(2026, 1, 1, tzinfo=UTC), "f": False, "r": "[]"},
        )
    upgrade(engine)  # to the head: the rows inserted below have every later column
    assert (
        current_revision(engine) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    )
    columns = {c["name"] for c in inspect(engine).get_columns("prediction_log")}
    assert "role" in columns
    with engine.begin() as conn:
        assert conn.execute(text("SELECT role FROM prediction_log")).scalars().all() == ["primary"]
        shadow = to_row(make_record(0, "old", "hi", "b"), "full")
        shadow["role"] = "shadow"
        assert insert_rows(conn, [shadow]) == 1
        assert insert_rows(conn, [shadow]) == 0  # replay-safe: the key now includes role
        roles = conn.execute(text("SELECT role FROM prediction_log ORDER BY id")).scalars().all()
        assert roles == ["primary", "shadow"]
    downgrade(engine, "0001")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM prediction_log")).scalar_one() == 1
    engine.dispose()


def test_0005_adds_a_nullable_trace_id_and_removes_it_on_downgrade(db_url: str) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO prediction_log (request_id, "index", created_at, client, model, '
                "version, text, text_sha256, label, confidence, fallback, ranking, latency_ms, "
                "batch_size) VALUES ('old', 0, :t, 'c', 'example', 1, 'hi', NULL, 'a', 0.9, "
                ":f, :r, 1.0, 1)"
            ),
            {"t": datetime(2026, 1, 1, tzinfo=UTC), "f": False, "r": "[]"},
        )
    upgrade(engine, "0005")
    traced = make_record(0, "new")
    traced.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with engine.begin() as conn:
        assert insert_rows(conn, [to_row(traced, "full")]) == 1
        rows = conn.execute(text("SELECT request_id, trace_id FROM prediction_log ORDER BY id"))
        assert rows.all() == [("old", None), ("new", traced.trace_id)]
    downgrade(engine, "0003")
    columns = {c["name"] for c in inspect(engine).get_columns("prediction_log")}
    assert "trace_id" not in columns
    engine.dispose()
