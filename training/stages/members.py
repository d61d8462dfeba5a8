"""Each member of a product of experts (training.architectures.experts) gets its own epochs.

The members train on their own losses and their own weights, so each one's course over the
epochs is what it would be alone. The k-fold records every member's held-out log-probabilities
after every epoch (MemberCurves) and gives each member the epoch its own out-of-fold curve
chooses, by the k-fold's rule (the lowest loss among the epochs within EPOCH_TIE of the best
accuracy). The refit trains for the most of those epochs and keeps each member's weights as
they were after its own (MemberSnapshots). With 30 rows a label the n-gram member fits its
training rows in ~10 epochs while an encoder's linear member is still learning; one epoch count
for all stops the encoders' members early or lets the n-grams overfit.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def product(logs: np.ndarray) -> np.ndarray:
    """Members' log-probabilities [members, rows, n_labels] -> the product of experts'
    probabilities [rows, n_labels] (what ProductOfExperts answers)."""
    z = log_softmax(logs.mean(axis=0))
    return np.exp(z).astype(np.float32)


def curve(logs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and mean negative log-likelihood per epoch of log-probabilities
    [epochs, rows, n_labels]."""
    accuracy = (logs.argmax(axis=2) == y[None, :]).mean(axis=1)
    nll = -np.take_along_axis(logs, y[None, :, None], axis=2)[..., 0].mean(axis=1)
    return accuracy, nll


def best_epoch(accuracy: np.ndarray, nll: np.ndarray, tie: float) -> int:
    """The k-fold's rule (0-based): the lowest loss among the epochs within ``tie`` of the best
    accuracy."""
    tied = np.flatnonzero(accuracy >= accuracy.max() - tie)
    return int(tied[np.argmin(nll[tied])])


def curve_report(accuracy: np.ndarray, nll: np.ndarray) -> dict[str, list[float]]:
    """An out-of-fold curve as metadata.json records it."""
    return {
        "out_of_fold_accuracy_by_epoch": [round(float(a), 4) for a in accuracy],
        "out_of_fold_loss_by_epoch": [round(float(v), 4) for v in nll],
    }


class MemberCurves:
    """Every member's log-probabilities of the held-out rows after every epoch, filled fold by
    fold (each row by the fold that holds it out); allocated on the first record."""

    def __init__(self, epochs: int, n_rows: int) -> None:
        self.epochs, self.n_rows = epochs, n_rows
        self.logs: np.ndarray | None = None  # [epochs, members, rows, n_labels]

    def record(self, epoch: int, rows: np.ndarray, logs: np.ndarray) -> None:
        if self.logs is None:
            members, _, n_labels = logs.shape
            shape = (self.epochs, members, self.n_rows, n_labels)
            self.logs = np.zeros(shape, dtype=np.float32)
        self.logs[epoch][:, rows] = logs

    def choose(self, y: np.ndarray, horizon: int, tie: float) -> list[int]:
        """Each member's best epoch (0-based) within ``horizon``: the lowest out-of-fold loss
        among its epochs within ``tie`` of its best out-of-fold accuracy."""
        assert self.logs is not None
        members = range(self.logs.shape[1])
        return [best_epoch(*curve(self.logs[:horizon, m], y), tie) for m in members]

    def at(self, epochs: list[int]) -> np.ndarray:
        """The product's out-of-fold probabilities, each member at its epoch (0-based)."""
        assert self.logs is not None
        return product(np.stack([self.logs[e, m] for m, e in enumerate(epochs)]))

    def report(self, y: np.ndarray, horizon: int) -> dict[str, Any]:
        """Each member's out-of-fold accuracy and loss by epoch (for metadata.json)."""
        assert self.logs is not None
        members = range(self.logs.shape[1])
        return {"members": [curve_report(*curve(self.logs[:horizon, m], y)) for m in members]}


class MemberSnapshots(keras.callbacks.Callback):
    """Keep member m's weights as they are after epoch ``epochs[m]`` (1-based) and put them
    back when training ends; ``weights``: each member's own variables
    (training.architectures.experts.member_weights)."""

    def __init__(self, weights: list[list[Any]], epochs: list[int]) -> None:
        super().__init__()
        if len(weights) != len(epochs):
            raise ValueError(f"{len(epochs)} member epochs for {len(weights)} members")
        self.weights, self.epochs = weights, epochs
        self.kept: dict[int, list[np.ndarray]] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for m, last in enumerate(self.epochs):
            if last == epoch + 1:
                self.kept[m] = [np.array(v.numpy()) for v in self.weights[m]]

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for m, values in self.kept.items():
            for v, value in zip(self.weights[m], values, strict=True):
                v.assign(value)
