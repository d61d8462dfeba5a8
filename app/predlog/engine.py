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
PG_TCP_USER_TIMEOUT_MS = 20_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(
    url: str, pre_ping: bool = True, statement_timeout_s: float | None = None
) -> Engine:
    """An engine for ``url``; lazy: nothing connects until the first use.

    On PostgreSQL, ``statement_timeout_s`` bounds every statement (and its lock waits) on the
    server, and TCP keepalives and ``tcp_user_timeout`` notice a peer that vanished without
    closing. None of these bounds a call whose query never reached the server over a
    connection something keeps open; the log writer adds a client-side watchdog for that
    (``app.predlog.call_watchdog``).

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
        connect_args: dict[str, Any] = {
            # psycopg bounds the whole connection set-up (TCP, startup, authentication).
            "connect_timeout": PG_CONNECT_TIMEOUT_S,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            # Data sent but not acknowledged for this long (the peer's host is gone) fails.
            "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
        }
        if statement_timeout_s is not None:
            # In the startup packet rather than a SET after connecting: no extra round trip,
            # which could itself hang. Added to any 'options' the URL already carries.
            given = parsed.query.get("options", "")
            given = " ".join(given) if isinstance(given, tuple) else given
            timeout = f"-c statement_timeout={int(statement_timeout_s * 1000)}"
            connect_args["options"] = f"{given} {timeout}".strip()
        kwargs["connect_args"] = connect_args
        return create_engine(parsed, **kwargs)
    return create_engine(parsed, **kwargs)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (CLI, feedback) work while the writer inserts. Incremental auto-vacuum
    # (it takes effect only on a new, empty file) lets the pruner hand freed pages back to
    # the file system; without it SQLite still reuses them for new rows.
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
