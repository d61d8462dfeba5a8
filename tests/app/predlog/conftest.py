"""Fixtures of the database tests: a migrated database on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from app.predlog.engine import create_db_engine
from app.predlog.migrate import upgrade
from tests.app.predlog.backends import db_url, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    """An engine on a freshly migrated database (SQLite file or PostgreSQL schema)."""
    eng = create_db_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()
