"""Metrics against small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import (
    apply_threshold,
    choose_threshold,
    compute_metrics,
    confusion_matrix,
    pr_curve,
)

# 6 rows, 3 labels. True: a a a b b c. Predicted (argmax): a a b b c c.
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
PROBS = np.array(
    [
        [0.9, 0.05, 0.05],
        [0.6, 0.3, 0.1],
        [0.3, 0.6, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.4, 0.5],
        [0.1, 0.1, 0.8],
    ]
)


def test_confusion_matrix_by_hand() -> None:
    cm = confusion_matrix(Y_TRUE, PROBS.argmax(axis=1), 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_metrics_by_hand() -> None:
    m = compute_metrics(Y_TRUE, PROBS, ["a", "b", "c"])
    assert m["rows"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    a, b, c = (m["per_class"][k] for k in "abc")
    # a: tp 2, predicted 2, support 3 -> P 1, R 2/3, F1 0.8
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == pytest.approx((1, 2 / 3, 0.8, 3))
    # b: tp 1, predicted 2, support 2 -> P 0.5, R 0.5, F1 0.5
    assert (b["precision"], b["recall"], b["f1"], b["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    # c: tp 1, predicted 2, support 1 -> P 0.5, R 1, F1 2/3
    assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((0.5, 1, 2 / 3))
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_macro_f1_skips_labels_absent_from_the_set() -> None:
    m = compute_metrics(np.array([0, 1]), np.array([[0.9, 0.1, 0], [0.2, 0.8, 0]]), ["a", "b", "c"])
    assert m["macro_f1"] == 1.0
    assert m["per_class"]["c"]["support"] == 0


def test_pr_curve_by_hand() -> None:
    # Scores for label a: 0.9(+) 0.6(+) 0.3(+) 0.2(-) 0.1(-) 0.1(-).
    precision, recall, ap = pr_curve(Y_TRUE == 0, PROBS[:, 0])
    assert recall.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1, 1, 1])
    assert precision.tolist() == pytest.approx([1, 1, 1, 1, 3 / 4, 3 / 6])
    assert ap == pytest.approx(1.0)
    # Label b: 0.7(+) 0.6(-) 0.4(+) ... -> AP = 0.5*1 + 0.5*(2/3).
    assert pr_curve(Y_TRUE == 1, PROBS[:, 1])[2] == pytest.approx(0.5 + 1 / 3)


def test_threshold_is_lowest_reaching_target() -> None:
    conf = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, True, False, True, False])
    # Keeping >= 0.8: 3/3; >= 0.7: 3/4; >= 0.6: 4/5 = 0.8; >= 0.5: 4/6.
    fb = choose_threshold(conf, correct, 0.8)
    assert fb.threshold == 0.6
    assert fb.precision == pytest.approx(0.8)
    assert fb.fallback_rate == pytest.approx(1 / 6)
    assert choose_threshold(conf, correct, 0.95).threshold == 0.8
    assert choose_threshold(conf, correct, 0.5).threshold == 0.5


def test_threshold_when_target_unreachable() -> None:
    fb = choose_threshold(np.array([0.9, 0.8]), np.array([False, True]), 0.99)
    assert fb.threshold == 1.0
    assert fb.fallback_rate == 1.0 and fb.precision is None


def test_apply_threshold() -> None:
    fb = apply_threshold(np.array([0.9, 0.4, 0.7]), np.array([True, True, False]), 0.5)
    assert fb.precision == pytest.approx(0.5)
    assert fb.fallback_rate == pytest.approx(1 / 3)
