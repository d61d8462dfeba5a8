"""Keep Python's cyclic garbage collector from walking the loaded models on every full pass.

A loaded SavedModel is hundreds of thousands of Python objects (graphs, functions, trackable
wrappers). Each full (generation 2) collection walks all of them with the event loop stopped,
long enough to set the p99 latency under load (docs/results/speed.md, "What makes it fast").
``settle`` runs once after each model swap: it collects (dropping the retired version's
cycles) and then freezes whatever is alive, so later full collections only walk objects made
since, such as requests in flight.
Unfreezing first lets a retired version that was frozen with the others be collected.
"""

from __future__ import annotations

import gc
import time


def settle() -> float:
    """Collect everything, then freeze what survives; returns the seconds it took."""
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started
