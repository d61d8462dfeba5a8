"""Stage k-fold: a model per fold, its held-out rows predicted after every epoch; the refit's
epoch count comes from the mean out-of-fold curve, and that epoch's predictions are kept.

Every labelled row is then predicted by a model that did not train on it, and every row ends
in the published model (the refit): what small files need, where a 10% split of 10 rows per
label would hold out one row per label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from training.config import TrainConfig
from training.stages.fit import FitInput, fit
from training.stages.held_out import HeldOut
from training.stages.members import MemberCurves, best_epoch, curve, curve_report
from training.stages.prepare import Prepared, fold_count

# Epochs whose out-of-fold accuracy is within this of the best count as tied; the tie goes
# to the lowest out-of-fold loss (a later, more confident epoch, not an under-trained one).
EPOCH_TIE = 0.005
# The most epochs is raised so that a fold takes at least this many optimizer steps: 30
# epochs of a few hundred rows are too few steps for the default learning rate to converge.
KFOLD_MIN_STEPS = 800


def kfold_indices(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out row indices per fold, stratified: each label's rows dealt round the folds.

    A label with fewer rows than folds is held out in as many folds as it has rows, so every
    row is held out exactly once and still has a training example of its label elsewhere
    when it has two or more.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            parts[(offset + j) % folds].append(int(i))
        offset += len(idx)  # labels start where the last one stopped: folds stay even
    return [np.array(sorted(p), dtype=np.int64) for p in parts if p]


class RecordHeldOut:
    """Record a fold's held-out predictions after each epoch (fit's ``watch``), and a product
    of experts' member log-probabilities in ``members``; with ``patience`` set (the first fold),
    stop once neither their accuracy nor their loss improved for that many epochs, the
    product's nor any member's (the later folds then run as many epochs: the horizon the curves
    are chosen from)."""

    def __init__(
        self, per_epoch: np.ndarray, y: np.ndarray, rows: np.ndarray, members: MemberCurves
    ) -> None:
        self.per_epoch, self.y, self.rows, self.members = per_epoch, y, rows, members
        self.patience: int | None = None  # None: never stop
        # Per curve (the product, then each member): best accuracy, best loss, last epoch
        # either improved.
        self.best: list[tuple[float, float, int]] = []

    def __call__(self, epoch: int, p: np.ndarray, member_logs: Any = None) -> bool:
        self.per_epoch[epoch, self.rows] = p
        curves = [np.log(np.maximum(p, 1e-30))[None]]
        if member_logs is not None:
            self.members.record(epoch, self.rows, member_logs)
            curves += [z[None] for z in member_logs]
        if not self.best:
            self.best = [(-1.0, np.inf, 0)] * len(curves)
        for i, logs in enumerate(curves):
            accuracy, nll = curve(logs, self.y[self.rows])
            acc, loss = float(accuracy[0]), float(nll[0])
            best_acc, best_loss, at = self.best[i]
            if acc > best_acc or loss < best_loss:
                self.best[i] = (max(acc, best_acc), min(loss, best_loss), epoch)
        last = max(at for _, _, at in self.best)
        return self.patience is not None and epoch - last >= self.patience


def _choose_epoch(per_epoch: np.ndarray, y: np.ndarray) -> tuple[int, dict[str, Any]]:
    """The best epoch (0-based) of the mean out-of-fold curve, and the curve."""
    from training.calibration import negative_log_likelihood

    accuracy = (per_epoch.argmax(axis=2) == y[None, :]).mean(axis=1)
    nll = np.array([negative_log_likelihood(p, y) for p in per_epoch])
    return best_epoch(accuracy, nll, EPOCH_TIE), curve_report(accuracy, nll)


def cross_validate(
    cfg: TrainConfig, prep: Prepared, log: Callable[[str], None], features: Any | None = None
) -> HeldOut:
    """The folds' held-out predictions at the chosen epoch; ``features``: the run's cache,
    shared by the folds."""
    splits = prep.splits
    texts, y = splits.texts["train"], splits.y["train"]
    n_labels = len(splits.labels)
    folds = kfold_indices(y, min(fold_count(cfg), len(y)), cfg.seed)
    fold_rows = len(y) - max(len(f) for f in folds)
    most = max(cfg.epochs, math.ceil(KFOLD_MIN_STEPS * cfg.batch_size / max(fold_rows, 1)))
    # per_epoch[e][i]: row i's probabilities after epoch e+1 of the fold holding it out.
    per_epoch = np.zeros((most, len(y), n_labels), dtype=np.float32)
    members = MemberCurves(most, len(y))
    started = time.monotonic()
    horizon = most
    for k, held in enumerate(folds):
        train_rows = np.setdiff1d(np.arange(len(y)), held)
        record = RecordHeldOut(per_epoch, y, held, members)
        record.patience = cfg.patience if k == 0 else None
        job = FitInput(
            texts=[texts[i] for i in train_rows],
            y=y[train_rows],
            n_labels=n_labels,
            epochs=horizon,
            verbose=False,
            features=features,
            watch=([texts[i] for i in held], record),
            linear_members=True,
        )
        done = fit(cfg, job, log)
        horizon = min(horizon, done.epochs_run)
        log(
            f"fold {k + 1}/{len(folds)}: trained on {len(train_rows)} rows for {done.epochs_run} "
            f"epochs, predicted {len(held)} ({time.monotonic() - started:.0f}s)"
        )
    best, chosen = _choose_epoch(per_epoch[:horizon], y)
    accuracy, nll = chosen["out_of_fold_accuracy_by_epoch"], chosen["out_of_fold_loss_by_epoch"]
    log(
        f"cross-validation: best at epoch {best + 1}/{horizon} (out-of-fold accuracy "
        f"{accuracy[best]:.4f}, loss {nll[best]:.4f}) in {time.monotonic() - started:.1f}s"
    )
    info = {"method": "kfold", "folds": len(folds), "chosen_epochs": best + 1, **chosen}
    held_out = HeldOut("cv", per_epoch[best], y, epochs=best + 1, info=info)
    if members.logs is not None:
        _members_epochs(held_out, members, horizon, log)
    info["seconds"] = round(time.monotonic() - started, 2)
    return held_out


def _members_epochs(
    held: HeldOut, members: MemberCurves, horizon: int, log: Callable[[str], None]
) -> None:
    """A product of experts: each member at its own epoch (training.stages.members)."""
    chosen = members.choose(held.y, horizon, EPOCH_TIE)
    held.probs = members.at(chosen)
    held.member_epochs = [e + 1 for e in chosen]
    held.epochs = max(held.member_epochs)
    accuracy = float((held.probs.argmax(axis=1) == held.y).mean())
    log(
        f"cross-validation: members at epochs {held.member_epochs} (out-of-fold accuracy "
        f"{accuracy:.4f})"
    )
    held.info |= {
        "chosen_epochs": held.epochs,
        "member_epochs": held.member_epochs,
        "out_of_fold_accuracy": round(accuracy, 4),
        **members.report(held.y, horizon),
    }
