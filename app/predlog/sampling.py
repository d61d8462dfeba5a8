"""Which answered predictions the log keeps under ``TEXTCLS_LOG_SAMPLE_RATE``.

The choice is a hash of ``(request_id, index)``, not a coin toss, so it can be made again
later: feedback on a prediction the log never kept is told so, not just "not found".
"""

from __future__ import annotations

import zlib

_SPAN = 2**32


def sampled_in(request_id: str, index: int, rate: float) -> bool:
    """Whether a confident answered prediction is logged at ``rate`` (0 to 1)."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(f"{request_id}/{index}".encode()) < rate * _SPAN
