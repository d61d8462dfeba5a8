"""The server's pruner: applies the log's retention at start-up, then every interval.

One thread with its own engine. A pass that fails (the database is down, the schema is not
there yet) is logged and tried again at the next interval: retention is never a reason to
stop serving or writing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.predlog.engine import create_db_engine
from app.predlog.partitions import is_partitioned, manage_partitions
from app.predlog.records import utc_now
from app.predlog.retention import PRUNE_ACTIONS, PruneCounts, RetentionPolicy, prune

log = logging.getLogger(__name__)

# Between two batches of one pass: lets the writer's INSERTs take SQLite's write lock.
BATCH_PAUSE_S = 0.01


class LogPruner:
    """Prunes the log in the background; ``passes`` counts finished passes.

    ``metrics`` is optional: any object with a Prometheus counter ``log_rows_pruned``
    labelled by action.
    """

    def __init__(self, settings: Settings, metrics: Any = None) -> None:
        self.policy = RetentionPolicy.from_settings(settings)
        self._url = settings.database_url
        self._log_text = settings.log_text
        self._interval_s = settings.log_prune_interval_s
        self._batch_rows = settings.log_prune_batch_rows
        self._metrics = metrics
        if metrics is not None:
            # Every action's series exists at 0 from the start, for the dashboard's rate().
            for action in PRUNE_ACTIONS:
                metrics.log_rows_pruned.labels(action)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.failures = 0
        self.partitions_dropped = 0
        self.total = PruneCounts()

    def start(self) -> None:
        """Say what the log keeps; start pruning if anything expires."""
        log.info("%s", self.policy.describe(self._log_text))
        if not self.policy.active:
            return
        self._thread = threading.Thread(target=self._run, name="prediction-log-pruner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        engine = create_db_engine(self._url)
        try:
            while not self._stop.is_set():
                self.run_once(engine)
                if not self._interval_s or self._stop.wait(self._interval_s):
                    return
        finally:
            engine.dispose()

    def run_once(self, engine: Any) -> None:
        started = time.monotonic()
        try:
            now = utc_now()
            if is_partitioned(engine):
                dropped = manage_partitions(engine, self.policy, now=now)
                self._count("deleted", dropped.rows_deleted)
                self.partitions_dropped += dropped.dropped
            counts = prune(
                engine,
                self.policy,
                now=now,
                batch_rows=self._batch_rows,
                on_batch=self._count,
                stop=self._stop,
                pause_s=BATCH_PAUSE_S,
            )
        except SQLAlchemyError as exc:
            self.failures += 1
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            log.warning("prediction log pruning failed, will retry: %s", reason)
            return
        self.passes += 1
        if counts.deleted or counts.text_blanked or counts.feedback_deleted:
            log.info(
                "prediction log pruned: %d rows deleted, %d texts blanked, %d feedback rows "
                "deleted in %.1f s",
                counts.deleted,
                counts.text_blanked,
                counts.feedback_deleted,
                time.monotonic() - started,
            )

    def _count(self, action: str, n: int) -> None:
        if not n:
            return
        self.total.add(action, n)
        if self._metrics is not None:
            self._metrics.log_rows_pruned.labels(action).inc(n)
