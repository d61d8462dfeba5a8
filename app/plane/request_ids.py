"""Request ids: 32 random hex digits, the key of a request's rows in the prediction log."""

from __future__ import annotations

import os
import threading

_POOL_IDS = 256
_pool = ""
_pool_at = 0
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    global _pool, _pool_at
    _pool, _pool_at = "", 0


# A forked child must not hand out the ids its parent's pool still holds.
os.register_at_fork(after_in_child=_forget_pool)


def new_request_id() -> str:
    """32 random hex digits (128 bits, as ``uuid4().hex``), unguessable like it.

    Cut from one ``os.urandom`` read per 256 ids, so the event loop does not make a system
    call per request.
    """
    global _pool, _pool_at
    with _pool_lock:
        if _pool_at >= len(_pool):
            _pool, _pool_at = os.urandom(16 * _POOL_IDS).hex(), 0
        start = _pool_at
        _pool_at = start + 32
        return _pool[start : start + 32]
