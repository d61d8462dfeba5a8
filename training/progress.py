"""A Keras callback that prints one line per epoch (the CLI's progress display)."""

from __future__ import annotations

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
