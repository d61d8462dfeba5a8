"""Outage handling of the prediction log: rows the database cannot take go to the spill file,
and are replayed into the database once it answers again (a file left by an earlier run too).

The spill file's format and its cross-process lock are ``app.predlog.spill_file``'s; this
module decides when to append and replay, counts it, and keeps the log readable during an
outage (one line per few seconds, not one per spill).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.predlog.spill_file import SpillFile

log = logging.getLogger(__name__)

Row = dict[str, Any]

# During an outage the writer spills every few rows; one log line per spill would flood the
# log, and a log write blocked on a full pipe or a slow disk blocks the writer with it.
SPILL_LOG_EVERY_S = 5.0
# A disk that refuses refuses on every retry: say so once, then at most this often.
FAILURE_LOG_EVERY_S = 60.0


class Spiller:
    """Appends rows to the spill file and replays it; ``pending`` while it holds rows.

    ``metrics`` is optional: any object with a Prometheus counter ``log_rows_spilled``.
    ``count_error`` is called for each failed read or append.
    """

    def __init__(self, path: Path, count_error: Callable[[], None], metrics: Any = None) -> None:
        self.file = SpillFile(path)
        self._count_error = count_error
        self._metrics = metrics
        self._lock = threading.Lock()
        self.pending = False
        self.rows_spilled = 0
        self._logged_at = -SPILL_LOG_EVERY_S
        self._unlogged = 0
        # The last append's error, until an append succeeds again.
        self.last_error: OSError | None = None
        self._failure_logged_at = -FAILURE_LOG_EVERY_S

    @property
    def failure(self) -> str | None:
        """Why the spill file refuses rows, while it does."""
        if self.last_error is None:
            return None
        return f"cannot append to spill file {self.file.path}: {self.last_error.strerror}"

    def start(self) -> None:
        """Look for rows an earlier run left."""
        self.pending = self.file.exists()
        if self.pending:
            log.warning("replaying rows left in %s by an earlier run", self.file.path)

    def spill(self, rows: list[Row]) -> bool:
        """Append rows from memory to the spill file; False (rows kept) if the disk refuses."""
        if not rows:
            return True
        with self._lock:
            try:
                # The lock file too: on a full disk even creating it may fail.
                with self.file.locked():
                    self.file.append(rows)
            except OSError as exc:
                self._count_error()
                now = time.monotonic()
                if self.last_error is None or now - self._failure_logged_at >= FAILURE_LOG_EVERY_S:
                    log.error("cannot append to spill file %s: %s", self.file.path, exc)
                    self._failure_logged_at = now
                self.last_error = exc
                return False
            if self.last_error is not None:
                log.warning("spill file %s takes rows again", self.file.path)
                self.last_error = None
            self.pending = True
        self.rows_spilled += len(rows)
        if self._metrics is not None:
            self._metrics.log_rows_spilled.inc(len(rows))
        self._unlogged += len(rows)
        now = time.monotonic()
        if now - self._logged_at >= SPILL_LOG_EVERY_S:
            log.warning(
                "spilled %d prediction rows to %s (%d in all)",
                self._unlogged,
                self.file.path,
                self.rows_spilled,
            )
            self._logged_at, self._unlogged = now, 0
        return True

    def spill_abandoned(self, rows: list[Row]) -> bool:
        """Spill for a writer thread that hangs, perhaps holding the spill lock; True when the
        rows are in the file."""
        if self._lock.acquire(timeout=2.0):
            self._lock.release()
            return self.spill(rows)
        # The stuck thread holds the lock (a replay hanging in the database). Appending
        # without it only risks racing another process's replay; not appending loses rows.
        log.error("spill file is locked by the stuck writer; appending without the lock")
        try:
            self.file.append(rows)
        except OSError as exc:
            log.critical(
                "lost %d prediction rows: cannot append to %s: %s", len(rows), self.file.path, exc
            )
            return False
        self.rows_spilled += len(rows)
        return True

    def replay(self, write: Callable[[list[Row]], bool], chunk_rows: int) -> bool:
        """``write`` the whole spill file, chunk by chunk, then remove it; False if it fails.

        Holds the spill file's lock throughout, so other worker processes neither append to
        nor remove it meanwhile. After a failure the next replay starts from the top again:
        rows already inserted are skipped by the database.
        """
        with self._lock, self.file.locked():
            offset, at_end = 0, False
            while not at_end:
                try:
                    rows, offset, at_end = self.file.read_chunk(offset, chunk_rows)
                except FileNotFoundError:  # replayed and removed by another worker process
                    break
                except OSError as exc:
                    log.error("cannot read spill file %s: %s", self.file.path, exc)
                    self._count_error()
                    return False
                if rows and not write(rows):
                    return False
            self.file.remove()
            self.pending = False
        log.info("spill file %s replayed and removed", self.file.path)
        return True
