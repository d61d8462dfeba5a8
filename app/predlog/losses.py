"""Prediction rows lost for good: neither the database nor the spill file took them.

Counted by reason as they are lost (``textcls_log_rows_dropped_total{reason}``), logged at
most once a minute with the running count, and remembered for a minute after the last one,
so /healthz can say the log is degraded while it happens.
"""

from __future__ import annotations

import errno
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

# Lost rows are logged at most this often, with the running count.
LOG_EVERY_S = 60.0
# After the last lost row, the log counts as degraded for this long.
DEGRADED_S = 60.0


# Every ``reason`` label of textcls_log_rows_dropped_total, exported at 0 from the start so a
# dashboard's rate() has a series before the first loss.
LOSS_REASONS = ("disk_full", "file_too_large", "io_error")


def loss_reason(exc: BaseException | None) -> str:
    """The ``reason`` label of rows lost to ``exc``."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full"
    if code == errno.EFBIG:
        return "file_too_large"
    return "io_error"


class RowLosses:
    """Lost rows by reason. ``metrics``: any object with a counter ``log_rows_dropped``."""

    def __init__(self, metrics: Any = None) -> None:
        self._metrics = metrics
        if metrics is not None:
            for reason in LOSS_REASONS:
                metrics.log_rows_dropped.labels(reason)
        self.by_reason: dict[str, int] = {}
        self._at = -DEGRADED_S
        self._logged_at = -LOG_EVERY_S

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    @property
    def recent(self) -> bool:
        """Rows were lost within the last ``DEGRADED_S``."""
        return time.monotonic() - self._at < DEGRADED_S

    def count(self, n: int, error: OSError | None, why: str | None, *, final: bool) -> None:
        """``n`` rows lost to ``error`` (``why`` says it in words); ``final``: at shutdown,
        always logged."""
        reason = loss_reason(error)
        self.by_reason[reason] = self.by_reason.get(reason, 0) + n
        if self._metrics is not None:
            self._metrics.log_rows_dropped.labels(reason).inc(n)
        now = time.monotonic()
        self._at = now
        if final or now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log.error(
                "lost %d prediction rows (%d in all): neither the database nor the spill file "
                "takes them (%s); serving goes on, writing resumes when space returns",
                n,
                self.total,
                why or reason,
            )
