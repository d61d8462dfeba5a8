"""Turn a batch of probability rows into ranked predictions with the fallback rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, kw_only=True)
class RankedPrediction:
    """One text's answer: the top label, its confidence, whether to hand it to a person."""

    label: str
    confidence: float
    fallback: bool
    ranking: list[tuple[str, float]]


def descending_order(probabilities: np.ndarray) -> np.ndarray:
    """Label indices of each row, most probable first (computed once per model batch)."""
    # A stable sort keeps ties in label order, so equal inputs always rank the same way.
    return np.argsort(-probabilities, axis=1, kind="stable")


def rank(
    probabilities: np.ndarray,
    order: np.ndarray,
    labels: list[str],
    *,
    top_k: int,
    threshold: float,
    margin: float,
) -> list[RankedPrediction]:
    """Rank each row of ``probabilities`` (shape [n, n_labels]) given its ``order``.

    ``fallback`` is true when the top confidence is under ``threshold`` or the top two are
    closer than ``margin``. ``top_k`` is capped at the number of labels.
    """
    n = probabilities.shape[0]
    k = max(1, min(top_k, len(labels)))
    top_idx = order[:, :k]
    top_p = np.take_along_axis(probabilities, top_idx, axis=1).astype(np.float64)
    # The fallback rule always looks at the top two, even when top_k is 1.
    first = probabilities[np.arange(n), order[:, 0]]
    second = probabilities[np.arange(n), order[:, 1]] if len(labels) > 1 else np.zeros(n)
    fallback = (first < threshold) | ((first - second) < margin)
    idx_rows = top_idx.tolist()
    p_rows = top_p.tolist()
    fb = fallback.tolist()
    out = []
    for i in range(n):
        ranking = [(labels[j], p) for j, p in zip(idx_rows[i], p_rows[i], strict=True)]
        out.append(
            RankedPrediction(
                label=ranking[0][0], confidence=ranking[0][1], fallback=fb[i], ranking=ranking
            )
        )
    return out
