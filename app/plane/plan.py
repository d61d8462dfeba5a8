"""Each model's batching plan, chosen from what one text costs it, measured at load.

A model costing more than ``TEXTCLS_EXPENSIVE_MS_PER_TEXT`` per text at warm-up (an e5 encoder
model: ~10 ms on 2 CPU cores, against ~0.1 ms for an n-gram model) is served as *expensive*:

- one inference thread, so it runs one batch at a time and never holds more than one
  intra-op share of the CPU (two batches of it in flight would only split the same cores);
- batches of at most ``EXPENSIVE_BATCH_MS`` of measured work, so a queued request of it waits
  for a bounded batch and no batch of it holds the CPU for seconds;
- a lower CPU priority for that thread (``os.setpriority``, ``EXPENSIVE_NICE``), so that when the
  cores are busy, the event loop and the cheap models' threads run first and the expensive model
  takes what is left.

Every other model gets the service-wide settings. ``TEXTCLS_MODEL_BATCHING`` overrides any field
per model name. The plan is logged at load and shown by ``GET /models/{name}``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import asdict, dataclass

from app.config import Settings

log = logging.getLogger(__name__)

# Measured work one batch of an expensive model may hold: at ~10 ms/text, 20 texts.
EXPENSIVE_BATCH_MS = 200.0
EXPENSIVE_MIN_BATCH = 4
# Added to the niceness of an expensive model's inference thread (0 = normal, 19 = lowest).
EXPENSIVE_NICE = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPlan:
    """How one model version is batched and run."""

    max_batch_size: int
    max_batch_wait_ms: float
    inference_threads: int
    nice: int  # added to the inference threads' niceness; 0 leaves them as they are
    expensive: bool
    ms_per_text: float  # measured at warm-up on a full batch of short texts
    overridden: tuple[str, ...] = ()  # fields set by TEXTCLS_MODEL_BATCHING

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["overridden"] = list(self.overridden)
        d["ms_per_text"] = round(self.ms_per_text, 4)
        return d


def choose_plan(name: str, ms_per_text: float, settings: Settings) -> BatchPlan:
    """The plan of model ``name`` at ``ms_per_text``: measured defaults, then the overrides."""
    s = settings
    expensive = ms_per_text >= s.expensive_ms_per_text
    if expensive:
        fits = int(EXPENSIVE_BATCH_MS / max(ms_per_text, 1e-6))
        size = max(EXPENSIVE_MIN_BATCH, min(s.max_batch_size, fits))
        threads, nice = 1, EXPENSIVE_NICE
    else:
        size, threads, nice = s.max_batch_size, s.inference_threads, 0
    fields: dict[str, object] = {
        "max_batch_size": size,
        "max_batch_wait_ms": s.max_batch_wait_ms,
        "inference_threads": threads,
        "nice": nice,
    }
    override = s.model_batching.get(name)
    overridden: tuple[str, ...] = ()
    if override is not None:
        given = override.model_dump(exclude_none=True)
        fields |= given
        overridden = tuple(sorted(given))
    plan = BatchPlan(
        **fields,  # type: ignore[arg-type]
        expensive=expensive,
        ms_per_text=ms_per_text,
        overridden=overridden,
    )
    log.info("model %s: batching %s", name, plan.as_dict())
    return plan


def lower_thread_priority(increment: int) -> None:
    """Add ``increment`` to the calling thread's niceness (Linux keeps one per thread).

    Raising niceness needs no privilege; elsewhere (where it would be the whole process's)
    this does nothing.
    """
    if increment <= 0 or sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + increment))
    except OSError as exc:
        log.warning("could not lower the priority of thread %d: %s", tid, exc)
