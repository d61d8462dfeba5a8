"""ranking: top_k, order and the fallback rule, on hand-made probabilities."""

from __future__ import annotations

import numpy as np

from app.plane.ranking import descending_order, rank

LABELS = ["a", "b", "c"]


def _rank(probs: list[list[float]], top_k: int = 3, threshold: float = 0.5, margin: float = 0.0):
    p = np.asarray(probs, dtype=np.float32)
    return rank(p, descending_order(p), LABELS, top_k=top_k, threshold=threshold, margin=margin)


def test_ranking_is_descending_and_top_k_is_capped() -> None:
    (pred,) = _rank([[0.2, 0.7, 0.1]], top_k=10)
    assert [lbl for lbl, _ in pred.ranking] == ["b", "a", "c"]
    assert pred.label == "b"
    assert abs(pred.confidence - 0.7) < 1e-6
    (pred,) = _rank([[0.2, 0.7, 0.1]], top_k=1)
    assert [lbl for lbl, _ in pred.ranking] == ["b"]


def test_fallback_below_threshold() -> None:
    low, high = _rank([[0.4, 0.35, 0.25], [0.9, 0.05, 0.05]], threshold=0.5)
    assert low.fallback is True
    assert high.fallback is False


def test_fallback_when_top_two_are_close() -> None:
    close, apart = _rank([[0.52, 0.46, 0.02], [0.7, 0.2, 0.1]], threshold=0.5, margin=0.1)
    assert close.fallback is True
    assert apart.fallback is False


def test_fallback_uses_second_label_even_with_top_k_one() -> None:
    (pred,) = _rank([[0.51, 0.49, 0.0]], top_k=1, threshold=0.5, margin=0.05)
    assert pred.fallback is True
    assert len(pred.ranking) == 1


def test_ties_rank_in_label_order() -> None:
    (pred,) = _rank([[0.25, 0.5, 0.25]])
    assert [lbl for lbl, _ in pred.ranking] == ["b", "a", "c"]
