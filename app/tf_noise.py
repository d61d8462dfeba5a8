"""Keeps TensorFlow's start-up banners out of the ``textcls`` command's output.

TensorFlow's C++ libraries write lines to file descriptor 2 that look like failures on a
machine without a GPU: ``I0000 ... oneDNN custom operations are on``, ``Could not find cuda
drivers``, the CPU-instructions notice (each twice: two shared libraries log before absl's
logging is initialised, which ``TF_CPP_MIN_LOG_LEVEL`` cannot filter), and ``E0000 ... failed
call to cuInit`` (an ERROR-level line for "no GPU here", which the device choice already
reports). ``TF_CPP_MIN_LOG_LEVEL`` is set before TensorFlow is imported, and the remaining
banners are dropped by a small filter process in front of fd 2; every other line passes
through unchanged, in order.

The filter is a child process rather than a thread so that nothing written before a crash
(a fatal ``F0000`` check, faulthandler's dump) is lost: it reads until every writer has
closed the pipe, and ignores SIGINT and SIGTERM so a Ctrl-C or the orchestrator's stop
reaches the server while its shutdown lines still get through. ``TF_CPP_MIN_LOG_LEVEL=0``
turns the filter off and shows everything.
"""

from __future__ import annotations

import os
import subprocess
import sys

_filter: subprocess.Popen[bytes] | None = None  # kept, so it is not collected while it runs

LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
# 1 hides INFO once TensorFlow's logging is up; warnings and errors stay visible.
DEFAULT_LOG_LEVEL = "1"

# Lines that carry no information for a user, matched from their start.
NOISE = (
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} [\d:.]+ +\d+ (?:port|cudart_stub|cpu_feature_guard)\.cc:\d+\]"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate"
    rb"|E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit"
)

_FILTER = r"""
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
noise = re.compile(sys.argv[1].encode("latin-1"))
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if not noise.match(line):
        out.write(line)
        out.flush()
"""


def quiet_tensorflow() -> None:
    """Set TensorFlow's log level and start the banner filter; call before importing it."""
    global _filter
    level = os.environ.setdefault(LOG_LEVEL_ENV, DEFAULT_LOG_LEVEL)
    if level == "0" or _filter is not None:
        return  # the user asked for every line, or the filter already runs
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return  # no real stderr (embedded, captured): nothing to filter
    sys.stderr.flush()
    real = os.dup(stderr_fd)
    try:
        child = subprocess.Popen(
            [sys.executable, "-S", "-c", _FILTER, NOISE.decode("latin-1")],
            stdin=subprocess.PIPE,
            stdout=real,
            stderr=real,
            close_fds=True,
        )
    except OSError:
        os.close(real)
        return
    assert child.stdin is not None
    os.dup2(child.stdin.fileno(), stderr_fd)
    child.stdin.close()  # fd 2 is now the pipe's only writer end in this process
    os.close(real)
    _filter = child
