"""When to retry and how long to wait: connection errors, 429 and 503, never another 4xx."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({429, 503})
# Faults where the request cannot have been answered, or the connection broke under it; a
# retry is safe because it reuses the request's X-Request-ID, which the service's prediction
# log is keyed by (a repeated id adds no second row). ReadTimeout is left out on purpose: the
# server is slow, not gone, and the timeout is the caller's budget for this call.
RETRY_EXCEPTIONS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` more attempts after the first, with exponential backoff and jitter.

    A ``Retry-After`` from the service is waited for as given; when it asks for longer than
    ``max_wait_s`` the client does not wait but raises at once, so a call never blocks for
    longer than its caller agreed to.
    """

    retries: int = 3
    backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    max_wait_s: float = 10.0

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (0-based): full-jitter exponential."""
        ceiling = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        return random.uniform(ceiling / 2, ceiling)

    def wait_for(self, attempt: int, retry_after_s: float | None) -> float | None:
        """Seconds to wait before retrying, or None when the client should give up now."""
        if attempt >= self.retries:
            return None
        wait = self.backoff(attempt) if retry_after_s is None else retry_after_s
        return wait if wait <= self.max_wait_s else None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None if absent/invalid."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
