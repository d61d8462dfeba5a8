"""``train``: one training run, stage by stage (training.stages), to a published version."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training.config import TrainConfig
from training.settings import validate
from training.stages.calibrate import calibrate
from training.stages.evaluate import Evaluation, evaluate
from training.stages.fit import FitInput, fit
from training.stages.held_out import HeldOut, Trained
from training.stages.kfold import cross_validate
from training.stages.package import package
from training.stages.prepare import Prepared, prepare
from training.stages.refit import fitted_rows, refit, refit_all, wants_refit

Log = Callable[[str], None]


def _print(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


def train(cfg: TrainConfig, log: Log = _print, features: Any | None = None) -> Path:
    """Run every stage and return the published version folder.

    ``features``: the run's features cache (default: a fresh one, for the architectures that
    have one, see ``Architecture.make_features``): each distinct text is encoded once, for
    every fold, the refit and every prediction.
    """
    from dataclasses import replace

    from training import architectures, fonts

    validate(cfg)
    prep = prepare(cfg, log)
    cfg = replace(cfg, arch=prep.arch)
    if features is None:
        features = architectures.get(cfg.arch).make_features(cfg.params)
    if prep.validation == "kfold":
        trained = _kfold_then_refit(cfg, prep, log, features)
    else:
        trained = _fit_then_refit(cfg, prep, log, features)
    test = _test_predictions(prep, trained)
    cal = calibrate(cfg, trained.held, test)
    for warning in [*cal.warnings, *fonts.label_warnings(prep.splits.labels)]:
        log(f"warning: {warning}")
    evaluation = evaluate(cfg, prep, trained, cal)
    path = package(cfg, prep, trained, cal, evaluation)
    _summary(prep, trained, evaluation, log)
    return path


def _kfold_then_refit(cfg: TrainConfig, prep: Prepared, log: Log, features: Any) -> Trained:
    held = cross_validate(cfg, prep, log, features)
    assert held.epochs is not None
    return Trained(refit_all(cfg, prep, held, log, features), held)


def _fit_then_refit(cfg: TrainConfig, prep: Prepared, log: Log, features: Any) -> Trained:
    splits = prep.splits
    val = (splits.texts["val"], splits.y["val"])
    job = FitInput(
        texts=splits.texts["train"],
        y=splits.y["train"],
        n_labels=len(splits.labels),
        val=val,
        features=features,
    )
    fitted = fit(cfg, job, log)
    held = HeldOut("val", fitted.predict(val[0]), val[1], epochs=fitted.best_epoch)
    if wants_refit(cfg) and cfg.val_data is None:
        fitted = refit(cfg, prep, fitted, log, features)
        held.info["refit_rows"] = len(fitted_rows(prep))
    return Trained(fitted, held)


def _test_predictions(prep: Prepared, trained: Trained) -> tuple[np.ndarray, np.ndarray] | None:
    texts = prep.splits.texts["test"]
    return (trained.fitted.predict(texts), prep.splits.y["test"]) if texts else None


def _summary(prep: Prepared, trained: Trained, evaluation: Evaluation, log: Log) -> None:
    fitted, held = trained.fitted, trained.held
    shown = evaluation.headline_split
    t = evaluation.metrics[shown]
    fb = evaluation.metrics["fallback"]
    log(
        f"done in {time.monotonic() - prep.started:.1f}s ({fitted.epochs_run} epochs, best "
        f"{fitted.best_epoch}): {shown} accuracy {t['accuracy']:.4f}, macro-F1 "
        f"{t['macro_f1']:.4f}; fallback threshold {fb['threshold']:.3f} "
        f"({held.split}: {fb['val_fallback_rate']:.1%} fall back)"
    )
