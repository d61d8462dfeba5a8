"""Create the prediction log's SQLAlchemy engine: WAL and a busy timeout on SQLite."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(
    url: str, pre_ping: bool = True, statement_timeout_s: float | None = None
) -> Engine:
    """An engine for ``url``; lazy: nothing connects until the first use.

    On PostgreSQL, ``statement_timeout_s`` bounds every statement (and its lock waits), and TCP
    keepalives notice a peer that vanished without closing: a blocked INSERT then fails and is
    retried instead of stopping the log writer for good.

    Raises ``sqlalchemy.exc.ArgumentError`` for a malformed URL and ``ModuleNotFoundError`` for
    a missing driver: those are configuration errors, not outages.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "pool_pre_ping": pre_ping}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # A missing parent folder would look like an outage forever; create it. When
            # that fails the first connect fails too, and the caller treats it as an outage.
            with contextlib.suppress(OSError):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {
            "connect_timeout": PG_CONNECT_TIMEOUT_S,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        engine = create_engine(parsed, **kwargs)
        if statement_timeout_s is not None:
            timeout_ms = int(statement_timeout_s * 1000)

            def _set_timeout(dbapi_conn: Any, _record: Any) -> None:
                # SET rather than the 'options' parameter, which a URL may already use.
                with dbapi_conn.cursor() as cursor:
                    cursor.execute(f"SET statement_timeout = {timeout_ms}")
                dbapi_conn.commit()

            event.listen(engine, "connect", _set_timeout)
        return engine
    return create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (CLI, feedback) work while the writer inserts.
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
