"""The prediction log writer: queue rows in memory, insert them in batches from one thread.

``submit`` only appends to a deque under a lock, so the request path never waits for the
database. The writer thread takes up to ``log_batch_size`` rows, applies the privacy mode and
hands them to ``LogStore.insert`` (one multi-row INSERT that ignores rows already present).
When the database is down or erroring it keeps the rows, retries with capped exponential
backoff, and once more than ``log_buffer_rows`` are held the ``Spiller`` appends the excess to
the spill file. When the database answers again it replays the spill file, including one left
by an earlier run. ``stop`` flushes the queue to the database, or to the spill file if it is down.
When the disk refuses too, the newest ``log_buffer_rows`` rows stay in memory and the rest
are lost (``RowLosses``); both are retried every time, so writing resumes when space returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

from opentelemetry.trace import Tracer

from app.config import Settings
from app.predlog.log_status import LogStatus
from app.predlog.log_store import LogStore, Row
from app.predlog.losses import RowLosses
from app.predlog.pruner import LogPruner
from app.predlog.records import PredictionRecord, to_row
from app.predlog.sampling import Sampler
from app.predlog.spiller import Spiller
from app.predlog.write_span import write_span

log = logging.getLogger(__name__)

RETRY_INITIAL_S = 0.05
# How long a batch may wait to fill: rows reach the database within about this (plus the
# INSERT), and under load a transaction carries up to log_batch_size rows instead of one.
BATCH_LINGER_S = 0.2
IDLE_WAKE_S = 1.0


class PredictionLogWriter(LogStatus):
    """Writes every submitted prediction to the database exactly once, off the request path.

    ``healthy`` and ``status`` describe the database as the writer last saw it (for /readyz);
    ``rows_written``, ``rows_spilled``, ``rows_replayed``, ``write_errors`` and
    ``queue_depth`` count what happened; ``rows_sampled_out`` and ``rows_dropped`` (by reason)
    what was not written. ``metrics`` is optional: any object with the Prometheus attributes
    ``log_rows_written``, ``log_queue_depth``, ``log_rows_spilled``, ``log_rows_replayed``,
    ``log_write_errors``, ``log_rows_sampled_out``, ``log_rows_dropped`` and
    ``log_rows_pruned`` (the last for the ``pruner`` it starts).
    """

    def __init__(
        self, settings: Settings, metrics: object | None = None, tracer: Tracer | None = None
    ) -> None:
        self._tracer = tracer  # each INSERT's span, when tracing is on
        self._log_text = settings.log_text
        self.sampler = Sampler(settings.log_sample_rate, metrics)
        self.losses = RowLosses(metrics)
        self._batch_size = settings.log_batch_size
        self._buffer_rows = settings.log_buffer_rows
        self._retry_max_s = settings.log_retry_max_s
        self._metrics: Any = metrics
        self._store = LogStore(settings, metrics)
        self._spiller = Spiller(settings.log_spill_path, self._store.count_error, metrics)
        self.pruner = LogPruner(settings, metrics)
        self._cond = threading.Condition()
        self._pending: deque[PredictionRecord] = deque()
        # Converted rows taken for the next INSERT, kept until it succeeds (or they are
        # spilled); only the writer thread touches them while it runs.
        self._retry: list[Row] = []
        # Rows submitted, and rows that reached the database or the spill file (or were
        # refused by the database), so flush() knows when everything submitted is safe.
        self._submitted = 0
        self._settled = 0
        self._stopping = False
        self._idle = False  # the writer thread waits for rows (submit must wake it)
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.rows_replayed = 0
        self.rows_duplicate = 0

    # -- the request side ---------------------------------------------------------------

    def submit(self, records: Sequence[PredictionRecord]) -> None:
        """Queue ``records`` for the database; never blocks on I/O, safe from any thread."""
        if not records:
            return
        records = self.sampler.keep(records)
        if not records:
            return
        with self._cond:
            self._pending.extend(records)
            self._submitted += len(records)
            depth = len(self._pending) + len(self._retry)
            # Not while the database is down: that would cut the writer's backoff short on
            # every request, a storm of connection attempts that starves the server of CPU.
            if self._idle or (depth >= self._batch_size and self._store.healthy):
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
        self._store.open()
        self._spiller.start()
        self._store.probe()
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        self.pruner.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write every queued row to the database, or to the spill file if it is down."""
        self.pruner.stop()
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
                rows = self._store.in_flight + self._retry + [self._to_row(r) for r in records]
                if self._spiller.spill_abandoned(rows):
                    self._settled += len(rows)
        self._store.close()
        self._set_depth()

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        backoff = RETRY_INITIAL_S
        while True:
            stopping, records = self._take()
            # Held in _retry until written, so no failure below can drop them.
            self._retry = rows = self._retry + [self._to_row(r) for r in records]
            if not rows and stopping:
                return  # a spill file not yet replayed waits for the next start
            try:
                with write_span(self._tracer, records):
                    ok = self._step(rows)
            except Exception:
                # A bug, not an outage. Were it to end this thread, every later prediction
                # would be lost without a sound; log it loudly and go on retrying instead.
                log.exception("prediction log writer failed unexpectedly; retrying")
                self._store.count_error()
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

    def _take(self) -> tuple[bool, list[PredictionRecord]]:
        """Wait for work, then (stopping, records to add to the next INSERT)."""
        with self._cond:
            while not (self._pending or self._retry or self._stopping) and not (
                self._spiller.pending or not self._store.healthy
            ):
                self._idle = True
                self._cond.wait(IDLE_WAKE_S)
                self._idle = False
            if self._pending and self._store.healthy and not self._retry:
                self._linger()
            n = min(len(self._pending), self._batch_size - len(self._retry))
            return self._stopping, [self._pending.popleft() for _ in range(n)]

    def _step(self, rows: list[Row]) -> bool:
        """Write ``rows``, else replay the spill file, else check the database; True if done."""
        if rows:
            ok = self._write(rows)
            if ok:
                self._retry = []
            return ok
        if self._spiller.pending:
            return self._spiller.replay(partial(self._write, replay=True), self._batch_size)
        return self._store.probe()

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

    def _write(self, rows: list[Row], *, replay: bool = False) -> bool:
        """INSERT ``rows`` (new, or spilled ones on ``replay``); False (rows kept by the caller)
        when the database is down."""
        inserted = self._store.insert(rows)
        if inserted is None:
            return False
        self.rows_duplicate += len(rows) - inserted
        if replay:  # settled when they were spilled
            self.rows_replayed += inserted
            if self._metrics is not None:
                self._metrics.log_rows_replayed.inc(inserted)
            return True
        self._settled += len(rows)
        if inserted < len(rows):
            log.warning(
                "%d new prediction rows had a (request_id, index) already in the log and "
                "were not written; was an X-Request-ID reused?",
                len(rows) - inserted,
            )
        self.rows_written += inserted
        if self._metrics is not None:
            self._metrics.log_rows_written.inc(inserted)
        return True

    # -- outage: memory to the spill file -------------------------------------------------

    def _spill_overflow(self) -> None:
        """Move rows beyond ``log_buffer_rows`` from memory to the spill file."""
        excess = self.queue_depth - self._buffer_rows
        if excess <= 0:
            return
        from_retry = self._retry[:excess]
        self._retry = self._retry[excess:]
        with self._cond:
            records = [self._pending.popleft() for _ in range(excess - len(from_retry))]
        rows = from_retry + [self._to_row(r) for r in records]
        if not self._spill(rows):
            # The disk refuses too. Memory is bounded: the newest log_buffer_rows stay, to be
            # written when the database (or the disk) takes them; these are lost.
            self._drop(rows)

    def _spill_everything(self) -> None:
        with self._cond:
            records = list(self._pending)
            self._pending.clear()
        rows = self._retry + [self._to_row(r) for r in records]
        self._retry = []
        if rows and not self._spill(rows):
            self._drop(rows, final=True)

    def _spill(self, rows: list[Row]) -> bool:
        if not self._spiller.spill(rows):
            return False
        self._settled += len(rows)
        return True

    def _drop(self, rows: list[Row], *, final: bool = False) -> None:
        """Count ``rows`` as lost (settled: nothing will write them)."""
        self._settled += len(rows)
        spiller = self._spiller
        self.losses.count(len(rows), spiller.last_error, spiller.failure, final=final)

    def _set_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.log_queue_depth.set(self.queue_depth)
