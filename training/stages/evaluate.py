"""Stage evaluate: metrics of every held-out set (calibrated), the fallback, out-of-scope
texts, and how the held-out predictions were made, in words."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from training.config import TrainConfig
from training.stages.calibrate import Calibrated
from training.stages.held_out import HeldOut, Trained
from training.stages.prepare import Prepared


@dataclass(kw_only=True)
class Evaluation:
    """The stage's output: metrics.json's content, by split and topic."""

    metrics: dict[str, Any]

    @property
    def headline_split(self) -> str:
        """The split the run is summed up by: test when there is one, else the held-out one."""
        return "test" if "test" in self.metrics else self.metrics["evaluation"]["held_out"]


def _how(prep: Prepared, held: HeldOut) -> str:
    if held.split == "cv":
        return (
            f"{held.info['folds']}-fold cross-validation: each row predicted by the fold model "
            f"that did not train on it, after epoch {held.epochs}; the published model is a "
            f"refit on all {len(held.y)} rows for {held.epochs} epochs"
        )
    published = (
        f"is a refit on all {held.info['refit_rows']} train + val rows for as many "
        "epochs (val figures: the first model, which never trained on them)"
        if "refit_rows" in held.info
        else "never trained on it"
    )
    return (
        f"a stratified {len(held.y)}-row validation split "
        f"({prep.splits.sources['val']}) chose {held.epochs} epochs; the published model "
        + published
    )


def _evaluation(prep: Prepared, held: HeldOut, cal: Calibrated) -> dict[str, Any]:
    return {
        "held_out": held.split,
        "how": _how(prep, held),
        "test": prep.splits.sources["test"] if "test" in cal.probs else None,
        "warnings": cal.warnings,
        **({"cross_validation": held.info} if held.split == "cv" else {}),
        **(
            {"refit": {"rows": held.info["refit_rows"], "epochs": held.epochs}}
            if "refit_rows" in held.info
            else {}
        ),
    }


def evaluate(cfg: TrainConfig, prep: Prepared, trained: Trained, cal: Calibrated) -> Evaluation:
    """Score the calibrated held-out (and test) predictions; out-of-scope texts when given."""
    from training.calibration import apply_temperature
    from training.evaluate import compute_metrics
    from training.oos import score_oos

    held, fitted = trained.held, trained.fitted
    ys = {held.split: held.y, "test": prep.splits.y["test"]}
    metrics: dict[str, Any] = {
        s: compute_metrics(ys[s], p, prep.splits.labels) for s, p in cal.probs.items()
    }
    metrics["fallback"] = cal.fallback.model_dump(exclude_none=True)
    metrics["calibration"] = cal.calibration
    metrics["evaluation"] = _evaluation(prep, held, cal)
    if prep.oos_texts:
        in_split = "test" if "test" in cal.probs else held.split
        oos_probs = apply_temperature(fitted.predict(prep.oos_texts), cal.temperature)
        metrics["oos"] = score_oos(
            cal.probs[in_split], ys[in_split], oos_probs, cal.fallback.threshold
        )
    metrics["training"] = {
        "epochs_run": fitted.epochs_run,
        "best_epoch": fitted.best_epoch,
        "fit_seconds": round(fitted.fit_seconds, 2),
        "seconds": round(time.monotonic() - prep.started, 2),
    }
    if fitted.linear_strengths:  # the published fit's members on frozen features
        metrics["training"]["linear_member_strengths"] = fitted.linear_strengths
    return Evaluation(metrics=metrics)
