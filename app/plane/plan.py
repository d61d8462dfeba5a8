"""Each model's batching plan, chosen from what one text costs it, measured at load.

A model costing ``TEXTCLS_EXPENSIVE_MS_PER_TEXT`` or more per text at warm-up (an e5 encoder
model: ~10 ms on 2 CPU cores, against well under 1 ms for an n-gram model) is served as
*expensive*:

- as many inference threads as TensorFlow's intra-op pool fits on the cores: one with the
  default pool (a thread per core: a batch already has every core, and two batches in flight
  would only split them), one per core with ``TEXTCLS_TF_INTRA_OP_THREADS=1`` (each batch on
  one core, with no intra-op hand-offs between cores);
- cheap models first (app.plane.cheap_first): its next batch starts when the cheap models
  beside it have been idle for a moment, with up to ``max_batch_size`` texts; or, while they
  stay busy, after ``max_hold_ms`` (``EXPENSIVE_MAX_HOLD_MS``) with ``forced_batch_size`` texts,
  about ``EXPENSIVE_BATCH_MS`` of measured work (at least ``EXPENSIVE_MIN_BATCH``), since a
  batch cannot be interrupted once it holds the cores.

Every other model gets the service-wide settings. ``TEXTCLS_MODEL_BATCHING`` overrides any field
per model name (``expensive`` too). The plan is logged at load and shown by
``GET /models/{name}``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

from app.config import Settings

log = logging.getLogger(__name__)

# Measured work one batch of an expensive model may hold: at ~10 ms/text, 10 texts.
EXPENSIVE_BATCH_MS = 100.0
EXPENSIVE_MIN_BATCH = 8
# Longest an expensive model's batch waits for cheap models' texts to be answered.
EXPENSIVE_MAX_HOLD_MS = 2000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPlan:
    """How one model version is batched and run."""

    max_batch_size: int
    max_batch_wait_ms: float
    inference_threads: int
    expensive: bool
    max_hold_ms: float  # expensive only: the longest wait for cheap models' texts
    forced_batch_size: int  # expensive only: a batch's texts when its wait ran out
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
    override = s.model_batching.get(name)
    given = override.model_dump(exclude_none=True) if override is not None else {}
    expensive = given.get("expensive", ms_per_text >= s.expensive_ms_per_text)
    fits = int(EXPENSIVE_BATCH_MS / max(ms_per_text, 1e-6))
    cores = os.cpu_count() or 1
    threads = (
        max(1, cores // (s.tf_intra_op_threads or cores)) if expensive else s.inference_threads
    )
    fields: dict[str, object] = {
        "max_batch_size": s.max_batch_size,
        "forced_batch_size": max(EXPENSIVE_MIN_BATCH, min(s.max_batch_size, fits)),
        "max_batch_wait_ms": s.max_batch_wait_ms,
        "inference_threads": threads,
        "expensive": expensive,
        "max_hold_ms": EXPENSIVE_MAX_HOLD_MS if expensive else 0.0,
    }
    plan = BatchPlan(
        **(fields | given),  # type: ignore[arg-type]
        ms_per_text=ms_per_text,
        overridden=tuple(sorted(given)),
    )
    log.info("model %s: batching %s", name, plan.as_dict())
    return plan
