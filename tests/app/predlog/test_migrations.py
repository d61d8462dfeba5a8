"""The Alembic migrations shipped in the package: they build exactly the tables of the models."""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.predlog.engine import create_db_engine
from app.predlog.migrate import MIGRATIONS_DIR, alembic_config, current_revision, downgrade, upgrade
from app.predlog.tables import Base

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
