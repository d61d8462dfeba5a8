"""Which answered predictions the log keeps under ``TEXTCLS_LOG_SAMPLE_RATE``.

The choice is a hash of ``(request_id, index)``, not a coin toss, so it can be made again
later: feedback on a prediction the log never kept is told so, not just "not found".
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence
from typing import Any

from app.predlog.records import PredictionRecord

_SPAN = 2**32


def sampled_in(request_id: str, index: int, rate: float) -> bool:
    """Whether a confident answered prediction is logged at ``rate`` (0 to 1)."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(f"{request_id}/{index}".encode()) < rate * _SPAN


class Sampler:
    """Leaves out the confident answered records ``rate`` does not keep, and counts them.

    Fallbacks (hand-offs) and shadow rows are always kept. ``metrics``: any object with a
    counter ``log_rows_sampled_out``.
    """

    def __init__(self, rate: float, metrics: Any = None) -> None:
        self.rate = rate
        self._metrics = metrics
        self._lock = threading.Lock()
        self.rows_out = 0

    def keep(self, records: Sequence[PredictionRecord]) -> Sequence[PredictionRecord]:
        if self.rate >= 1.0:
            return records
        rate = self.rate
        kept = [
            r
            for r in records
            if r.role != "primary" or r.fallback or sampled_in(r.request_id, r.index, rate)
        ]
        out = len(records) - len(kept)
        if out:
            with self._lock:
                self.rows_out += out
            if self._metrics is not None:
                self._metrics.log_rows_sampled_out.inc(out)
        return kept
