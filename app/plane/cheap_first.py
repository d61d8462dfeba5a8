"""Cheap models first: an expensive model's batch waits while a cheap model has texts in hand.

Every model version has its own queue and inference threads (app.plane.batcher), but they share
the CPU cores and TensorFlow's thread pools, and a batch cannot be interrupted once it runs. An
e5 batch holds both cores of a small machine for ~200 ms; an n-gram batch beside it would wait.
So one ``CheapFirst`` per process counts the texts its cheap models have accepted and not yet
answered, and an expensive model's inference thread starts a batch only when that count has
been 0 for ``QUIET_S`` (under a steady load the count touches 0 between a batch's answers and
the clients' next requests; a batch slipped into that gap would hold the cores all the same),
or once it has waited ``max_hold_s`` (so a steady cheap load slows it but never starves it).

Each batcher holds a view: ``cheap()`` counts its texts in and out and never waits;
``expensive(max_hold_s, forced_batch)`` counts nothing and waits for its turn before each
batch. It first takes at most ``forced_batch`` texts; on a quiet turn the batch fills up to its
full size, on a forced one it stays that small, so it holds the busy cores briefly.
"""

from __future__ import annotations

import threading
import time

# How long the cheap models must have held no texts before an expensive batch starts.
QUIET_S = 0.05


class CheapFirst:
    """The texts cheap models hold, process-wide, and the turns of the expensive ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._cheap_texts = 0
        self._last_busy = 0.0  # monotonic time the cheap models last held texts
        self.held = 0  # expensive batches that waited for cheap texts to be answered
        self.forced = 0  # of those, batches that started at max_hold_s with cheap texts left

    @property
    def cheap_texts(self) -> int:
        """Texts accepted by cheap models and not answered yet."""
        return self._cheap_texts

    def cheap(self) -> Gate:
        return Gate(self, counts=True, max_hold_s=0.0)

    def expensive(self, max_hold_s: float, forced_batch: int) -> Gate:
        return Gate(self, counts=False, max_hold_s=max_hold_s, forced_batch=forced_batch)

    def _add(self, n: int) -> None:
        with self._cond:
            self._cheap_texts += n
            self._last_busy = time.monotonic()
            if self._cheap_texts == 0:
                self._cond.notify_all()

    def _quiet_for(self, now: float) -> float:
        """Seconds the cheap models must still stay idle for (0: quiet now)."""
        if self._cheap_texts > 0:
            return QUIET_S
        return max(0.0, self._last_busy + QUIET_S - now)

    def _wait_turn(self, max_hold_s: float) -> bool:
        """Wait for the cheap models to be quiet; False if ``max_hold_s`` ran out first."""
        with self._cond:
            now = time.monotonic()
            if self._quiet_for(now) == 0:
                return True
            self.held += 1
            deadline = now + max_hold_s
            while (wait := self._quiet_for(now)) > 0:
                remaining = deadline - now
                if remaining <= 0:
                    self.forced += 1
                    return False
                self._cond.wait(min(wait, remaining))
                now = time.monotonic()
            return True


class Gate:
    """One batcher's view of the process's CheapFirst (see the module)."""

    def __init__(
        self, shared: CheapFirst, *, counts: bool, max_hold_s: float, forced_batch: int = 0
    ) -> None:
        self.shared = shared
        self.counts = counts
        self.max_hold_s = max_hold_s
        self.forced_batch = forced_batch

    def accepted(self, n: int) -> None:
        """``n`` texts were queued (the event loop, on submit)."""
        if self.counts:
            self.shared._add(n)

    def answered(self, n: int) -> None:
        """``n`` texts got their answer or error (an inference thread, after a batch)."""
        if self.counts:
            self.shared._add(-n)

    def first_take(self, full: int) -> int:
        """Texts to take into a batch before its turn: ``full``, or the forced size."""
        return full if self.counts else max(1, min(full, self.forced_batch))

    def turn(self, full: int) -> int:
        """Before a batch: an expensive model's thread waits while cheap texts are in hand.
        The batch's size now: ``full`` if quiet (or cheap), else the forced size."""
        if self.counts or self.shared._wait_turn(self.max_hold_s):
            return full
        return self.first_take(full)
