"""What the fit (split) or k-fold stage hands on: the held-out predictions and the fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.stages.fit import Fitted


@dataclass
class HeldOut:
    """Predictions on rows the predicting model did not train on, and what chose the epochs."""

    split: str  # "val" (a split) or "cv" (out-of-fold)
    probs: np.ndarray
    y: np.ndarray
    epochs: int | None = None  # the epochs the published model trains for
    member_epochs: list[int] | None = None  # a product of experts: each member's (k-fold)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trained:
    """The published model (before calibration) and the held-out predictions it is judged by."""

    fitted: Fitted
    held: HeldOut
