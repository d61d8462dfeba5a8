"""Graceful shutdown: uvicorn drains on SIGTERM, then the process exits with status 0.

On SIGTERM uvicorn stops accepting connections, waits up to ``timeout_graceful_shutdown``
(``TEXTCLS_SHUTDOWN_GRACE_S``) for the requests in flight, and runs the lifespan shutdown,
which drains the batch queues and flushes the prediction log. Then it restores the SIGTERM
handler it found and raises the signal again; with Python's default handler the process would
end "killed by SIGTERM" (status 143), which orchestrators and supervisors read as a crash.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def exit_zero_on_sigterm() -> None:
    """Install the handler uvicorn hands SIGTERM back to once it has drained.

    Installed before uvicorn starts, it also turns a SIGTERM during start-up (loading
    TensorFlow) into a clean exit: nothing is in flight then.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_zero)
