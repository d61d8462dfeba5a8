"""The fit stage's Keras callbacks: epoch lines, guarded early stopping, rates, watched texts."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np


class EpochLog(keras.callbacks.Callback):
    """``epoch 3/30  loss 0.412  acc 0.881  val_loss 0.530  val_acc 0.850  2.1s``."""

    def __init__(self, epochs: int, log: Callable[[str], None]) -> None:
        super().__init__()
        self.epochs = epochs
        self.log = log
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        for key, short in (
            ("loss", "loss"),
            ("accuracy", "acc"),
            ("val_loss", "val_loss"),
            ("val_accuracy", "val_acc"),
        ):
            if key in logs:
                parts.append(f"{short} {float(logs[key]):.4f}")
        parts.append(f"{time.monotonic() - self.started:.1f}s")
        self.log("  ".join(parts))


class GuardedEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that ignores epochs still close to a uniform guess.

    On a small validation split, accuracy can peak at epoch 2 while the loss is still near
    ``ln(n_labels)``; plain early stopping would keep that under-trained model. Here an epoch
    counts (as best, and for patience) only once its validation loss (training loss without
    validation) is below ``fraction * ln(n_labels)``. If none ever is, the last epoch is kept.
    """

    def __init__(self, n_labels: int, fraction: float = 0.75, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ceiling = fraction * math.log(max(n_labels, 2))
        self.eligible_from: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        loss = logs.get("val_loss", logs.get("loss"))
        # An AveragingEnsemble's or a product of experts' loss is the sum of its members'.
        members = member_count(self.model)
        if self.eligible_from is None:
            if loss is None or float(loss) >= self.ceiling * members:
                return
            self.eligible_from = epoch
        super().on_epoch_end(epoch, logs)

    @property
    def best_epoch_number(self) -> int | None:
        """1-based epoch whose weights are kept, None when no epoch was eligible (the last)."""
        return None if self.eligible_from is None else int(self.best_epoch) + 1


def member_count(model: Any) -> int:
    """How many losses ``model``'s loss sums: its members' (an averaging ensemble, a product
    of experts trained by MemberLosses), else 1."""
    from training.architectures.experts import MemberLosses, find_experts

    experts = find_experts(model) if isinstance(model, MemberLosses) else None
    if experts is not None:
        return len(experts.member_logits)
    return len(getattr(model, "members", None) or [None])


class RecordRate(keras.callbacks.Callback):
    """Record each epoch's learning rate; with ``replay``, set epoch k's rate to replay[k]
    first (a refit repeating the schedule of the run that chose its epochs)."""

    def __init__(self, replay: list[float] | None = None) -> None:
        super().__init__()
        self.replay = replay
        self.rates: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.replay:
            self.model.optimizer.learning_rate.assign(self.replay[epoch])
        self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))


class WatchTexts(keras.callbacks.Callback):
    """Predict some texts after every epoch (their inputs computed once, ``x``) and hand the
    probabilities and member log-probabilities (``Trainee.predict_members``) to
    ``on_epoch(epoch, probabilities, members)``; True from it stops training."""

    def __init__(
        self,
        x: Any,
        predict: Callable[[Any], tuple[np.ndarray, Any]],
        on_epoch: Callable[[int, np.ndarray, Any], bool],
    ) -> None:
        super().__init__()
        self.x, self.predict, self.on_epoch = x, predict, on_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.on_epoch(epoch, *self.predict(self.x)):
            self.model.stop_training = True
