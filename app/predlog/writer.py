"""The prediction log writer: queue rows in memory, insert them in batches from one thread.

``submit`` only appends to a deque under a lock, so the request path never waits for the
database. The writer thread takes up to ``log_batch_size`` rows, applies the privacy mode and
sends them as one multi-row INSERT that ignores rows already present. When the database is down
or erroring it keeps the rows, retries with capped exponential backoff, and once more than
``log_buffer_rows`` are held it appends the excess to the spill file (JSON lines, fsynced).
When the database answers again it replays the spill file, including one left by an earlier
run. ``stop`` flushes the queue to the database, or to the spill file if the database is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from app.config import Settings
from app.predlog.call_watchdog import CallWatchdog
from app.predlog.engine import create_db_engine, is_sqlite
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade
from app.predlog.records import PredictionRecord, to_row
from app.predlog.spill_file import SpillFile

log = logging.getLogger(__name__)

Row = dict[str, Any]

RETRY_INITIAL_S = 0.05
# A statement blocked longer than this (a lock held by a half-dead session, say) fails and is
# retried, rather than stopping the writer while rows pile up in memory.
STATEMENT_TIMEOUT_S = 10.0
# Client side: a call (connect, INSERT, commit) not answered within this has its connection
# shut and is retried on a fresh one. Covers what the server's timeout cannot: a query that
# never reached it, over a connection a proxy or NAT holds open without forwarding.
CALL_TIMEOUT_S = STATEMENT_TIMEOUT_S + 5.0
# How long a batch may wait to fill: rows reach the database within about this (plus the
# INSERT), and under load a transaction carries up to log_batch_size rows instead of one.
BATCH_LINGER_S = 0.2
IDLE_WAKE_S = 1.0
# During an outage the writer spills every few rows; one log line per spill would flood the
# log, and a log write blocked on a full pipe or a slow disk blocks the writer with it.
SPILL_LOG_EVERY_S = 5.0


class PredictionLogWriter:
    """Writes every submitted prediction to the database exactly once, off the request path.

    ``healthy`` and ``status`` describe the database as the writer last saw it (for /readyz);
    ``rows_written``, ``rows_spilled``, ``rows_replayed``, ``write_errors`` and
    ``queue_depth`` count what happened. ``metrics`` is optional: any object with the
    Prometheus attributes ``log_rows_written``, ``log_queue_depth``, ``log_rows_spilled``,
    ``log_rows_replayed`` and ``log_write_errors``.
    """

    def __init__(self, settings: Settings, metrics: object | None = None) -> None:
        self._url = settings.database_url
        self._auto_migrate = settings.auto_migrate and is_sqlite(settings.database_url)
        self._log_text = settings.log_text
        self._batch_size = settings.log_batch_size
        self._buffer_rows = settings.log_buffer_rows
        self._retry_max_s = settings.log_retry_max_s
        self._metrics: Any = metrics
        self._spill = SpillFile(settings.log_spill_path)
        self._spill_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: deque[PredictionRecord] = deque()
        # Converted rows taken for the next INSERT, kept until it succeeds (or they are
        # spilled); only the writer thread touches them while it runs.
        self._retry: list[Row] = []
        self._in_flight: list[Row] = []
        # Rows submitted, and rows that reached the database or the spill file (or were
        # refused by the database), so flush() knows when everything submitted is safe.
        self._submitted = 0
        self._settled = 0
        self._stopping = False
        self._idle = False  # the writer thread waits for rows (submit must wake it)
        self._thread: threading.Thread | None = None
        self._watchdog = CallWatchdog(CALL_TIMEOUT_S, name="prediction-log-watchdog")
        self._schema_ready = not self._auto_migrate
        self._spill_pending = False
        self._spill_logged_at = -SPILL_LOG_EVERY_S
        self._spilled_unlogged = 0
        self.engine: Engine | None = None
        self.healthy = False
        self.status = "not started"
        self.rows_written = 0
        self.rows_spilled = 0
        self.rows_replayed = 0
        self.rows_duplicate = 0
        self.rows_rejected = 0
        self.write_errors = 0

    # -- the request side ---------------------------------------------------------------

    def submit(self, records: Sequence[PredictionRecord]) -> None:
        """Queue ``records`` for the database; never blocks on I/O, safe from any thread."""
        if not records:
            return
        with self._cond:
            self._pending.extend(records)
            self._submitted += len(records)
            depth = len(self._pending) + len(self._retry)
            # Not while the database is down: that would cut the writer's backoff short on
            # every request, a storm of connection attempts that starves the server of CPU.
            if self._idle or (depth >= self._batch_size and self.healthy):
                self._cond.notify()
        # The depth gauge is set by the writer thread after each batch or retry, not here:
        # a locked gauge write per request showed on the event loop's profile.

    @property
    def queue_depth(self) -> int:
        """Rows accepted but not yet in the database or the spill file."""
        return len(self._pending) + len(self._retry)

    def flush(self, timeout: float) -> bool:
        """Wait until every row submitted so far is in the database (or spilled); True if so.

        For readers that must see a prediction just answered, such as POST /feedback.
        """
        deadline = time.monotonic() + timeout
        target = self._submitted
        while self._settled < target:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Create the engine, migrate SQLite if configured, start the writer thread.

        A database that is down is not an error here: the service must start and serve, and
        the writer keeps trying. A malformed URL or a missing driver does raise.
        """
        # No pre-ping: a ping per batch doubles the round trips. A connection that died fails
        # its INSERT, the pool drops it, and the retry gets a fresh one.
        self.engine = create_db_engine(
            self._url, pre_ping=False, statement_timeout_s=STATEMENT_TIMEOUT_S
        )
        # First, so the dialect's own first queries on a new connection are watched too.
        event.listen(self.engine, "connect", self._on_connect, insert=True)
        self._watchdog.start()
        self._spill_pending = self._spill.exists()
        if self._spill_pending:
            log.warning("replaying rows left in %s by an earlier run", self._spill.path)
        self._probe()
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write every queued row to the database, or to the spill file if it is down."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                # Stuck in a database call. Spill what it holds and what is queued; if its
                # INSERT does land after all, the replay skips those rows as duplicates.
                log.error("log writer did not finish in %.1fs; spilling its rows", timeout)
                with self._cond:
                    records = list(self._pending)
                    self._pending.clear()
                rows = self._in_flight + self._retry + [self._to_row(r) for r in records]
                self._spill_abandoned(rows)
        if self.engine is not None:
            self.engine.dispose()
        self._watchdog.close()
        self.healthy = False
        self.status = "stopped"
        self._set_depth()

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        backoff = RETRY_INITIAL_S
        while True:
            with self._cond:
                while not (self._pending or self._retry or self._stopping) and not (
                    self._spill_pending or not self.healthy
                ):
                    self._idle = True
                    self._cond.wait(IDLE_WAKE_S)
                    self._idle = False
                if self._pending and self.healthy and not self._retry:
                    self._linger()
                stopping = self._stopping
                records = [
                    self._pending.popleft()
                    for _ in range(min(len(self._pending), self._batch_size - len(self._retry)))
                ]
            # Held in _retry until written, so no failure below can drop them.
            self._retry = rows = self._retry + [self._to_row(r) for r in records]
            if not rows and stopping:
                return  # a spill file not yet replayed waits for the next start
            try:
                if rows:
                    ok = self._write(rows)
                    if ok:
                        self._retry = []
                elif self._spill_pending:
                    ok = self._replay()
                else:
                    ok = self._probe()
            except Exception:
                # A bug, not an outage. Were it to end this thread, every later prediction
                # would be lost without a sound; log it loudly and go on retrying instead.
                log.exception("prediction log writer failed unexpectedly; retrying")
                self._count_error()
                ok = False
            self._set_depth()
            if ok:
                backoff = RETRY_INITIAL_S
                continue
            if stopping:
                self._spill_everything()
                return
            self._spill_overflow()
            with self._cond:
                if not self._stopping:
                    self._cond.wait(backoff)
            backoff = min(backoff * 2, self._retry_max_s)

    def _linger(self) -> None:
        """Let a batch fill for up to BATCH_LINGER_S (called holding the condition's lock).

        Fewer, larger transactions cost the database and this process far less CPU than one
        per request; submit() wakes us early only when a full batch is waiting.
        """
        deadline = time.monotonic() + BATCH_LINGER_S
        while len(self._pending) < self._batch_size and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _to_row(self, record: PredictionRecord) -> Row:
        return to_row(record, self._log_text)

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            assert self.engine is not None
            upgrade(self.engine)
            self._schema_ready = True

    def _probe(self) -> bool:
        """Check the database (and migrate SQLite once); True when it answers."""
        assert self.engine is not None
        try:
            self._ensure_schema()
            with self._watchdog.guard(), self.engine.connect() as conn:
                self._watchdog.attach(conn.connection.dbapi_connection)
                conn.execute(text("SELECT 1 FROM prediction_log WHERE 1 = 0"))
        except (SQLAlchemyError, OSError) as exc:
            self._mark_down(exc)
            return False
        self._mark_up()
        return True

    def _insert(self, rows: list[Row]) -> int:
        assert self.engine is not None
        self._ensure_schema()
        self._in_flight = rows
        try:
            # A call cut short by the watchdog raises a disconnect error; the rows stay with
            # the caller and are retried, and rows that did land are skipped then.
            with self._watchdog.guard(), self.engine.connect() as conn:
                self._watchdog.attach(conn.connection.dbapi_connection)
                with conn.begin():
                    return insert_rows(conn, rows)
        finally:
            self._in_flight = []

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        self._watchdog.attach(dbapi_connection)

    def _write(self, rows: list[Row], replay: bool = False) -> bool:
        """INSERT ``rows``; False (rows kept by the caller) when the database is down."""
        try:
            inserted = self._insert(rows)
        except (DataError, IntegrityError) as exc:
            # Not an outage: some row is unacceptable. Find it so the others still land.
            self._count_error()
            log.error("prediction log rejected a batch (%s); inserting rows one by one", exc)
            one_by_one = self._write_one_by_one(rows)
            if one_by_one is None:
                return False
            inserted = one_by_one
        except (SQLAlchemyError, OSError) as exc:
            self._count_error()
            self._mark_down(exc)
            return False
        self._mark_up()
        self.rows_duplicate += len(rows) - inserted
        if not replay:
            self._settled += len(rows)
            if inserted < len(rows):
                log.warning(
                    "%d new prediction rows had a (request_id, index) already in the log and "
                    "were not written; was an X-Request-ID reused?",
                    len(rows) - inserted,
                )
        if replay:
            self.rows_replayed += inserted
            if self._metrics is not None:
                self._metrics.log_rows_replayed.inc(inserted)
        else:
            self.rows_written += inserted
            if self._metrics is not None:
                self._metrics.log_rows_written.inc(inserted)
        return True

    def _write_one_by_one(self, rows: list[Row]) -> int | None:
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
                self._mark_down(exc)
                return None
        return inserted

    def _replay(self) -> bool:
        """Insert the whole spill file, chunk by chunk, then remove it; False if the DB fails.

        Holds the spill file's lock throughout, so other worker processes neither append to
        nor remove it meanwhile. After a failure the next replay starts from the top again:
        rows already inserted are skipped by the database.
        """
        with self._spill_lock, self._spill.locked():
            offset, at_end = 0, False
            while not at_end:
                try:
                    rows, offset, at_end = self._spill.read_chunk(offset, self._batch_size)
                except FileNotFoundError:  # replayed and removed by another worker process
                    break
                except OSError as exc:
                    log.error("cannot read spill file %s: %s", self._spill.path, exc)
                    self._count_error()
                    return False
                if rows and not self._write(rows, replay=True):
                    return False
            self._spill.remove()
            self._spill_pending = False
        log.info("spill file %s replayed and removed", self._spill.path)
        return True

    def _spill_overflow(self) -> None:
        """Move rows beyond ``log_buffer_rows`` from memory to the spill file."""
        excess = self.queue_depth - self._buffer_rows
        if excess <= 0:
            return
        from_retry = self._retry[:excess]
        self._retry = self._retry[excess:]
        with self._cond:
            records = [self._pending.popleft() for _ in range(excess - len(from_retry))]
        if not self._spill_rows(from_retry + [self._to_row(r) for r in records]):
            # The disk refuses too: keep them in memory rather than lose them.
            self._retry = from_retry + [self._to_row(r) for r in records] + self._retry

    def _spill_everything(self) -> None:
        with self._cond:
            records = list(self._pending)
            self._pending.clear()
        rows = self._retry + [self._to_row(r) for r in records]
        self._retry = []
        if not self._spill_rows(rows):
            log.critical("lost %d prediction rows: database and spill file both failed", len(rows))

    def _spill_abandoned(self, rows: list[Row]) -> None:
        """Spill from ``stop`` while the writer thread hangs, perhaps holding the spill lock."""
        if self._spill_lock.acquire(timeout=2.0):
            self._spill_lock.release()
            self._spill_rows(rows)
            return
        # The stuck thread holds the lock (a replay hanging in the database). Appending
        # without it only risks racing another process's replay; not appending loses rows.
        log.error("spill file is locked by the stuck writer; appending without the lock")
        try:
            self._spill.append(rows)
        except OSError as exc:
            log.critical(
                "lost %d prediction rows: cannot append to %s: %s", len(rows), self._spill.path, exc
            )
            return
        self.rows_spilled += len(rows)

    def _spill_rows(self, rows: list[Row]) -> bool:
        """Append rows from memory to the spill file; False (rows kept) if the disk refuses."""
        if not rows:
            return True
        with self._spill_lock, self._spill.locked():
            try:
                self._spill.append(rows)
            except OSError as exc:
                log.error("cannot append to spill file %s: %s", self._spill.path, exc)
                self._count_error()
                return False
            self._spill_pending = True
        self.rows_spilled += len(rows)
        self._settled += len(rows)
        if self._metrics is not None:
            self._metrics.log_rows_spilled.inc(len(rows))
        self._spilled_unlogged += len(rows)
        now = time.monotonic()
        if now - self._spill_logged_at >= SPILL_LOG_EVERY_S:
            log.warning(
                "spilled %d prediction rows to %s (%d in all)",
                self._spilled_unlogged,
                self._spill.path,
                self.rows_spilled,
            )
            self._spill_logged_at, self._spilled_unlogged = now, 0
        return True

    # -- state ----------------------------------------------------------------------------

    def _count_error(self) -> None:
        self.write_errors += 1
        if self._metrics is not None:
            self._metrics.log_write_errors.inc()

    def _mark_down(self, exc: BaseException) -> None:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        if "prediction_log" in reason:  # e.g. relation "prediction_log" does not exist
            reason += " (has `textcls db upgrade` been run?)"
        if self.healthy or self.status == "not started":
            log.warning("prediction log database unavailable, will retry: %s", reason)
        self.healthy = False
        self.status = "database unavailable: " + reason

    def _mark_up(self) -> None:
        if not self.healthy and self.status != "not started":
            log.info("prediction log database is back")
        self.healthy = True
        self.status = "ok"

    def _set_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.log_queue_depth.set(self.queue_depth)
