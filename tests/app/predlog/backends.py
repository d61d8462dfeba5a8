"""Database fixtures: a fresh SQLite file, or a fresh schema in the test PostgreSQL.

PostgreSQL comes from ``TEXTCLS_TEST_POSTGRES_URL``. Unset: its tests skip locally and fail
when ``CI=true``; set but unreachable: they fail. Each test gets its own schema (through the
``search_path`` connection option), dropped afterwards, so tests cannot see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

POSTGRES_ENV = "TEXTCLS_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_base_url() -> str:
    """The test PostgreSQL's URL; skips (locally) or fails (CI) when it is not configured."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{POSTGRES_ENV} is not set, and CI=true needs the PostgreSQL tests")
        pytest.skip(f"{POSTGRES_ENV} is not set")
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections put ``schema`` first on the search path."""
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL of the test PostgreSQL whose tables live in a schema of this test alone."""
    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"{POSTGRES_ENV}={base} is unreachable: {exc.orig}")
    try:
        yield with_schema(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database (no tables), SQLite or PostgreSQL, for one test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'log.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
