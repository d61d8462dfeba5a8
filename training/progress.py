"""A Keras callback that prints one line per epoch (the CLI's progress display)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras


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
        # An AveragingEnsemble's loss is the sum of its members' losses.
        members = len(getattr(self.model, "members", None) or [None])
        if self.eligible_from is None:
            if loss is None or float(loss) >= self.ceiling * members:
                return
            self.eligible_from = epoch
        super().on_epoch_end(epoch, logs)

    @property
    def best_epoch_number(self) -> int | None:
        """1-based epoch whose weights are kept, None when no epoch was eligible (the last)."""
        return None if self.eligible_from is None else int(self.best_epoch) + 1
