"""The prediction log's database as the writer uses it: batched INSERTs, and whether it answers.

``insert`` returns how many rows landed, or None when the database is down or erroring (the
caller keeps the rows and retries); a batch the database refuses for one bad row is inserted
row by row, so the others still land. ``healthy`` and ``status`` say how the database was last
seen, for /readyz. Every call runs under a client-side watchdog (``CallWatchdog``), since a
server-side statement timeout cannot cover a connection a proxy or NAT holds open silently.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from app.config import Settings
from app.predlog.call_watchdog import CallWatchdog
from app.predlog.engine import create_db_engine, is_sqlite
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade

log = logging.getLogger(__name__)

Row = dict[str, Any]

# A statement blocked longer than this (a lock held by a half-dead session, say) fails and is
# retried, rather than stopping the writer while rows pile up in memory.
STATEMENT_TIMEOUT_S = 10.0
# Client side: a call (connect, INSERT, commit) not answered within this has its connection
# shut and is retried on a fresh one. Covers what the server's timeout cannot: a query that
# never reached it, over a connection a proxy or NAT holds open without forwarding.
CALL_TIMEOUT_S = STATEMENT_TIMEOUT_S + 5.0


class LogStore:
    """One engine on the prediction log database, used from the writer thread only.

    ``metrics`` is optional: any object with a Prometheus counter ``log_write_errors``.
    """

    def __init__(self, settings: Settings, metrics: Any = None) -> None:
        self._url = settings.database_url
        self._schema_ready = not (settings.auto_migrate and is_sqlite(settings.database_url))
        self._metrics = metrics
        self.watchdog = CallWatchdog(CALL_TIMEOUT_S, name="prediction-log-watchdog")
        self.engine: Engine | None = None
        # The rows of the INSERT under way, for a writer stuck in it to spill.
        self.in_flight: list[Row] = []
        self.healthy = False
        self.status = "not started"
        self.write_errors = 0
        self.rows_rejected = 0

    def open(self) -> None:
        """Create the engine; raises only for a malformed URL or a missing driver."""
        # No pre-ping: a ping per batch doubles the round trips. A connection that died fails
        # its INSERT, the pool drops it, and the retry gets a fresh one.
        self.engine = create_db_engine(
            self._url, pre_ping=False, statement_timeout_s=STATEMENT_TIMEOUT_S
        )
        # First, so the dialect's own first queries on a new connection are watched too.
        event.listen(self.engine, "connect", self._on_connect, insert=True)
        self.watchdog.start()

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        self.watchdog.close()
        self.healthy = False
        self.status = "stopped"

    def probe(self) -> bool:
        """Check the database (and migrate SQLite once); True when it answers."""
        assert self.engine is not None
        try:
            self._ensure_schema()
            with self.watchdog.guard(), self.engine.connect() as conn:
                self.watchdog.attach(conn.connection.dbapi_connection)
                conn.execute(text("SELECT 1 FROM prediction_log WHERE 1 = 0"))
        except (SQLAlchemyError, OSError) as exc:
            self.mark_down(exc)
            return False
        self.mark_up()
        return True

    def insert(self, rows: list[Row]) -> int | None:
        """INSERT ``rows``, skipping those already present; how many landed, None if down."""
        try:
            inserted = self._insert(rows)
        except (DataError, IntegrityError) as exc:
            # Not an outage: some row is unacceptable. Find it so the others still land.
            self.count_error()
            log.error("prediction log rejected a batch (%s); inserting rows one by one", exc)
            return self._insert_one_by_one(rows)
        except (SQLAlchemyError, OSError) as exc:
            self.count_error()
            self.mark_down(exc)
            return None
        self.mark_up()
        return inserted

    def _insert(self, rows: list[Row]) -> int:
        assert self.engine is not None
        self._ensure_schema()
        self.in_flight = rows
        try:
            # A call cut short by the watchdog raises a disconnect error; the rows stay with
            # the caller and are retried, and rows that did land are skipped then.
            with self.watchdog.guard(), self.engine.connect() as conn:
                self.watchdog.attach(conn.connection.dbapi_connection)
                with conn.begin():
                    return insert_rows(conn, rows)
        finally:
            self.in_flight = []

    def _insert_one_by_one(self, rows: list[Row]) -> int | None:
        inserted = 0
        for row in rows:
            try:
                inserted += self._insert([row])
            except (DataError, IntegrityError) as exc:
                self.rows_rejected += 1
                log.error(
                    "dropping prediction %s/%s the database refuses: %s",
                    row.get("request_id"),
                    row.get("index"),
                    exc.orig,
                )
            except (SQLAlchemyError, OSError) as exc:
                self.mark_down(exc)
                return None
        self.mark_up()
        return inserted

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            assert self.engine is not None
            upgrade(self.engine)
            self._schema_ready = True

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        self.watchdog.attach(dbapi_connection)

    def count_error(self) -> None:
        self.write_errors += 1
        if self._metrics is not None:
            self._metrics.log_write_errors.inc()

    def mark_down(self, exc: BaseException) -> None:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        if "prediction_log" in reason:  # e.g. relation "prediction_log" does not exist
            reason += " (has `textcls db upgrade` been run?)"
        if self.healthy or self.status == "not started":
            log.warning("prediction log database unavailable, will retry: %s", reason)
        self.healthy = False
        self.status = "database unavailable: " + reason

    def mark_up(self) -> None:
        if not self.healthy and self.status != "not started":
            log.info("prediction log database is back")
        self.healthy = True
        self.status = "ok"
