"""Idempotent multi-row INSERT of prediction rows (a row already there is skipped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Insert
from sqlalchemy.dialects import postgresql, sqlite

from app.db.tables import PredictionLog

# Bound parameters per statement stay under SQLite's 32766 and PostgreSQL's 65535.
MAX_PARAMS = 30_000
_COLUMNS = len(PredictionLog.__table__.columns) - 1  # all but the generated id
MAX_ROWS_PER_STATEMENT = MAX_PARAMS // _COLUMNS


def _insert_ignoring_duplicates(dialect: str, rows: Sequence[dict[str, Any]]) -> Insert:
    table = PredictionLog.__table__
    if dialect == "sqlite":
        return (
            sqlite.insert(table)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=["request_id", "index"])
        )
    if dialect == "postgresql":
        return (
            postgresql.insert(table)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=["request_id", "index"])
        )
    raise NotImplementedError(f"the prediction log supports SQLite and PostgreSQL, not {dialect}")


def insert_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows``, one multi-row INSERT per ``MAX_ROWS_PER_STATEMENT``; return rows inserted.

    Rows whose ``(request_id, index)`` is already there are skipped, so replaying is safe.
    """
    inserted = 0
    for start in range(0, len(rows), MAX_ROWS_PER_STATEMENT):
        chunk = rows[start : start + MAX_ROWS_PER_STATEMENT]
        result = conn.execute(_insert_ignoring_duplicates(conn.dialect.name, chunk))
        inserted += result.rowcount
    return inserted
