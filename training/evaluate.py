"""Classification metrics in numpy: accuracy, F1, confusion, PR curves, fallback threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """``cm[i, j]`` = rows of true label ``i`` predicted as ``j``."""
    cm = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class (0 where undefined)."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(int)}


def pr_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One-vs-rest precision-recall curve (binary ``y_true``) and its average precision."""
    order = np.argsort(-scores, kind="stable")
    y = np.asarray(y_true, dtype=bool)[order]
    s = scores[order]
    positives = int(y.sum())
    if positives == 0:
        return np.array([1.0]), np.array([0.0]), 0.0
    # Keep the last index of each distinct score: ties are one threshold.
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[distinct]
    fp = (distinct + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / positives
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return np.r_[1.0, precision], np.r_[0.0, recall], ap


@dataclass
class Fallback:
    """Threshold on the top-1 confidence: below it a prediction is handed to a person."""

    threshold: float
    precision: float | None
    fallback_rate: float


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> Fallback:
    """The lowest confidence threshold whose kept predictions reach ``target`` precision.

    Kept = confidence >= threshold. If no threshold reaches the target, it is 1.0 (all but
    certain predictions fall back).
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if len(confidence) == 0:
        return Fallback(threshold=0.0, precision=None, fallback_rate=0.0)
    order = np.argsort(-confidence, kind="stable")
    c, ok = confidence[order], correct[order]
    distinct = np.r_[np.flatnonzero(np.diff(c)), len(c) - 1]
    precision = np.cumsum(ok)[distinct] / (distinct + 1)
    reaching = np.flatnonzero(precision >= target)
    threshold = float(c[distinct[reaching[-1]]]) if len(reaching) else 1.0
    return apply_threshold(confidence, correct, threshold)


def apply_threshold(confidence: np.ndarray, correct: np.ndarray, threshold: float) -> Fallback:
    """Precision of the kept predictions and the share that falls back at ``threshold``."""
    confidence = np.asarray(confidence, dtype=np.float64)
    kept = confidence >= threshold
    precision = float(np.asarray(correct, dtype=bool)[kept].mean()) if kept.any() else None
    rate = float(1.0 - kept.mean()) if len(confidence) else 0.0
    return Fallback(threshold=threshold, precision=precision, fallback_rate=rate)


def compute_metrics(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Everything report/metrics.json holds about one labelled set (no curves, see pr_curves)."""
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(axis=1)
    n = len(labels)
    cm = confusion_matrix(y_true, y_pred, n)
    scores = per_class_scores(cm)
    present = scores["support"] > 0
    aps = [pr_curve(y_true == k, probs[:, k])[2] for k in range(n)]
    micro_ap = pr_curve(np.eye(n, dtype=bool)[y_true].ravel(), probs.ravel())[2]
    return {
        "rows": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        # Macro averages over labels present in this set, so a split missing a rare label
        # is not penalised for it.
        "macro_f1": float(scores["f1"][present].mean()) if present.any() else 0.0,
        "macro_precision": float(scores["precision"][present].mean()) if present.any() else 0.0,
        "macro_recall": float(scores["recall"][present].mean()) if present.any() else 0.0,
        "micro_average_precision": float(micro_ap),
        "per_class": {
            label: {
                "precision": float(scores["precision"][k]),
                "recall": float(scores["recall"][k]),
                "f1": float(scores["f1"][k]),
                "support": int(scores["support"][k]),
                "average_precision": float(aps[k]),
            }
            for k, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
    }
