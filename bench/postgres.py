"""A throw-away schema in PostgreSQL for the prediction-log rows, dropped after the run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
URL_ENV = "TEXTCLS_BENCH_POSTGRES_URL"


class PostgresUnavailable(Exception):
    """The benchmark's PostgreSQL cannot be reached."""


@contextmanager
def bench_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema holding the migrated prediction-log tables.

    Its own schema, so the run neither sees nor disturbs tables of tests using the same database.
    """
    from app.predlog.engine import create_db_engine
    from app.predlog.migrate import upgrade

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        raise PostgresUnavailable(f"{base_url}: {exc.orig}") from exc
    url = (
        make_url(base_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        engine = create_db_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
