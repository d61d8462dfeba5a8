"""Stage refit: train the published model again on every row that chose its epochs.

split: after the val rows chose the epochs (and learning rates), a model trains on train + val
rows for as many epochs; the first model's val predictions stay the held-out ones. kfold: after
the folds chose the epochs, a model trains on every row for that many.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from training.config import TrainConfig
from training.stages.fit import FitInput, Fitted, fit
from training.stages.held_out import HeldOut
from training.stages.prepare import Prepared


def wants_refit(cfg: TrainConfig) -> bool:
    """``cfg.refit``, or (None) the default of ``cfg.arch`` (decided, not ``auto``)."""
    from training import architectures

    return architectures.get(cfg.arch).refit if cfg.refit is None else cfg.refit


def fitted_rows(prep: Prepared) -> list[str]:
    """The texts the published model trains on: train, and (a split's refit) val."""
    return prep.splits.texts["train"] + prep.splits.texts["val"]


def refit(
    cfg: TrainConfig,
    prep: Prepared,
    first: Fitted,
    log: Callable[[str], None],
    features: Any | None = None,
) -> Fitted:
    """split: train + val rows for ``first``'s best epochs at its learning rates."""
    splits = prep.splits
    texts = fitted_rows(prep)
    started = time.monotonic()
    done = fit(
        cfg,
        FitInput(
            texts=texts,
            y=np.concatenate([splits.y["train"], splits.y["val"]]),
            n_labels=len(splits.labels),
            epochs=first.best_epoch,
            verbose=False,
            features=features,
            learning_rates=first.learning_rates[: first.best_epoch],
        ),
        log,
    )
    log(
        f"refit on {len(texts)} train + val rows for {first.best_epoch} epochs "
        f"({time.monotonic() - started:.0f}s)"
    )
    return replace(
        done,
        epochs_run=first.epochs_run,
        best_epoch=first.best_epoch,
        fit_seconds=first.fit_seconds + done.fit_seconds,
    )


def refit_all(
    cfg: TrainConfig, prep: Prepared, held: HeldOut, log: Callable[[str], None], features: Any
) -> Fitted:
    """kfold: every training row for the epochs the folds chose (``held``'s; each member its
    own, for a product of experts)."""
    splits = prep.splits
    job = FitInput(
        texts=splits.texts["train"],
        y=splits.y["train"],
        n_labels=len(splits.labels),
        epochs=held.epochs,
        features=features,
        member_epochs=held.member_epochs,
        linear_members=True,
    )
    return fit(cfg, job, log)
