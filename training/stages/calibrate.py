"""Stage calibrate: a temperature and the fallback threshold from the held-out predictions.

Fewer than MIN_HELD_OUT (or MIN_HELD_OUT_PER_LABEL per label) of them: T stays 1 and the
threshold is flagged as unreliable. A threshold that would hand more than
``cfg.max_fallback_rate`` of messages to a person is reported and capped there. The output's
``fallback`` is what metadata.json records as the serving fallback rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training import artifact
from training.config import TrainConfig
from training.stages.held_out import HeldOut

# Held-out predictions fewer than this (and than 3 per label) are too few to fit a temperature
# or a threshold on: a 10% split of 10 rows per label holds one row per label out.
MIN_HELD_OUT = 50
MIN_HELD_OUT_PER_LABEL = 3


@dataclass(kw_only=True)
class Calibrated:
    """The stage's output."""

    temperature: float
    probs: dict[str, np.ndarray]  # calibrated, per split ("cv"/"val", "test")
    uncalibrated: dict[str, np.ndarray]
    calibration: dict[str, Any]
    fallback: artifact.FallbackInfo  # the threshold serving falls back under, and its figures
    warnings: list[str]


def _threshold(
    cfg: TrainConfig, conf: np.ndarray, correct: np.ndarray, warnings: list[str]
) -> tuple[Any, float | None]:
    """The threshold reaching the target precision, capped at the most fallback allowed;
    the uncapped threshold when the cap applies."""
    from training.evaluate import apply_threshold, choose_threshold

    chosen = choose_threshold(conf, correct, cfg.target_precision)
    if chosen.fallback_rate <= cfg.max_fallback_rate:
        return chosen, None
    capped = float(np.quantile(conf, cfg.max_fallback_rate, method="lower"))
    capped_fb = apply_threshold(conf, correct, capped)
    warnings.append(
        f"reaching precision {cfg.target_precision:.2f} would need threshold "
        f"{chosen.threshold:.4f}, which hands {chosen.fallback_rate:.0%} of messages to a "
        f"person; capped at --max-fallback-rate {cfg.max_fallback_rate:.0%}: threshold "
        f"{capped:.4f}, precision of the kept messages {capped_fb.precision or 0:.3f} "
        "(more labelled examples raise it)"
    )
    return capped_fb, chosen.threshold


def calibrate(
    cfg: TrainConfig, held: HeldOut, test: tuple[np.ndarray, np.ndarray] | None
) -> Calibrated:
    """Temperature from ``held``, the fallback threshold on its calibrated confidences, and
    the test rows' (uncalibrated ``test``) figures at that threshold."""
    from training.calibration import calibrate as fit_temperature
    from training.calibration import record_margin
    from training.evaluate import apply_threshold

    probs, ys = {held.split: held.probs}, {held.split: held.y}
    if test is not None:
        probs["test"], ys["test"] = test
    warnings: list[str] = []
    needed = max(MIN_HELD_OUT, MIN_HELD_OUT_PER_LABEL * held.probs.shape[1])
    if len(held.y) < needed:
        warnings.append(
            f"only {len(held.y)} held-out predictions (< {needed}): confidences are not "
            "calibrated (T = 1) and the fallback threshold is a rough guess; use --validation "
            "kfold or a larger --val-data"
        )
        temperature, after, calibration = 1.0, dict(probs), {"method": "none", "temperature": 1.0}
    else:
        temperature, after, calibration = fit_temperature(probs, ys, fit_on=held.split)
    held_probs = after[held.split]
    chosen, target_threshold = _threshold(
        cfg, held_probs.max(axis=1), held_probs.argmax(axis=1) == held.y, warnings
    )
    fallback = artifact.FallbackInfo(
        threshold=chosen.threshold,
        target_precision=cfg.target_precision,
        val_precision=chosen.precision,
        val_fallback_rate=chosen.fallback_rate,
        chosen_on=held.split,
        held_out_rows=int(len(held.y)),
        target_threshold=target_threshold,
        max_fallback_rate=cfg.max_fallback_rate,
    )
    if "test" in after:
        t = apply_threshold(
            after["test"].max(axis=1), after["test"].argmax(axis=1) == ys["test"], chosen.threshold
        )
        fallback.test_precision, fallback.test_fallback_rate = t.precision, t.fallback_rate
    test_set = (after["test"], ys["test"]) if "test" in after else None
    warnings += record_margin(fallback, (held_probs, held.y), test_set)
    return Calibrated(
        temperature=temperature,
        probs=after,
        uncalibrated=probs,
        calibration=calibration,
        fallback=fallback,
        warnings=warnings,
    )
