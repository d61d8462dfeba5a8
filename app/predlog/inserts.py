"""Idempotent multi-row INSERT of prediction rows (a row already there is skipped).

Executed at the driver level: compiling a multi-row ``insert().values([...])`` with SQLAlchemy
costs Python time per row, which the serving threads would feel through the GIL. SQLite gets
``INSERT ... VALUES (?, ...), (?, ...)`` with the text built once per row count; PostgreSQL
gets one single-row ``INSERT`` run with ``executemany``, which psycopg sends as one pipeline
(one round trip) and adapts in C, rather than arrays adapted in Python for
``INSERT ... SELECT FROM unnest(...)`` (docs/results/speed.md, "What the prediction log costs").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection

from app.predlog.tables import PredictionLog

COLUMNS: tuple[str, ...] = tuple(c.name for c in PredictionLog.__table__.columns if c.name != "id")
# Bound parameters per statement stay under SQLite's 32766 and PostgreSQL's 65535.
MAX_ROWS_PER_STATEMENT = 30_000 // len(COLUMNS)
_QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)
# No conflict target: on a partitioned table the unique key also holds created_at.
_CONFLICT = "ON CONFLICT DO NOTHING"


def _sqlite_time(value: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime uses ("%Y-%m-%d %H:%M:%S.%f"), so ORM reads and
    # comparisons agree; isoformat is several times faster than strftime.
    return value.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")[:26]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


_DIALECTS: dict[str, tuple[str, str, Callable[[datetime], Any]]] = {
    # dialect: (placeholder, JSON placeholder, time conversion); PostgreSQL: PG_INSERT_SQL
    "sqlite": ("?", "?", _sqlite_time),
}


@lru_cache(maxsize=1024)
def insert_sql(dialect: str, n_rows: int) -> str:
    """The text of one INSERT of ``n_rows`` rows for ``dialect``, ignoring duplicates."""
    try:
        mark, json_mark, _ = _DIALECTS[dialect]
    except KeyError:
        raise NotImplementedError(
            f"the prediction log supports SQLite and PostgreSQL, not {dialect}"
        ) from None
    group = "(" + ", ".join(json_mark if c == "ranking" else mark for c in COLUMNS) + ")"
    values = ", ".join([group] * n_rows)
    return f"INSERT INTO prediction_log ({_QUOTED}) VALUES {values} {_CONFLICT}"


PG_INSERT_SQL = (
    f"INSERT INTO prediction_log ({_QUOTED}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
    + _CONFLICT
)


def _values(row: dict[str, Any], convert_time: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """``row``'s parameters in COLUMNS order."""
    return (
        row["request_id"],
        row["index"],
        convert_time(row["created_at"]),
        row["client"],
        row["model"],
        row["version"],
        row["text"],
        row["text_sha256"],
        row["label"],
        row["confidence"],
        row["fallback"],
        _json(row["ranking"]),
        row["latency_ms"],
        row["batch_size"],
        row.get("role", "primary"),  # rows spilled by a version before the column
        row.get("trace_id"),  # likewise
    )


def _same(value: datetime) -> datetime:
    return value  # psycopg sends aware datetimes as timestamptz


def insert_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` and return how many were new: on SQLite one multi-row INSERT per
    ``MAX_ROWS_PER_STATEMENT`` rows, on PostgreSQL one pipelined executemany.

    Rows whose ``(request_id, index, role)`` is already there are skipped, so replaying is safe.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # A list of parameter tuples: SQLAlchemy calls the driver's executemany, and the
        # result's rowcount is the sum over the rows (duplicates count 0).
        return conn.exec_driver_sql(PG_INSERT_SQL, [_values(r, _same) for r in rows]).rowcount
    inserted = 0
    for start in range(0, len(rows), MAX_ROWS_PER_STATEMENT):
        chunk = rows[start : start + MAX_ROWS_PER_STATEMENT]
        convert_time = _DIALECTS[dialect][2]
        flat = tuple(value for row in chunk for value in _values(row, convert_time))
        result = conn.exec_driver_sql(insert_sql(dialect, len(chunk)), flat)
        inserted += result.rowcount
    return inserted
