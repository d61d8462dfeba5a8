"""Temperature scaling lowers ECE on over-confident predictions, in numpy and in the graph."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from app.plane.ranking import descending_order, rank
from training.artifact import FallbackInfo
from training.calibration import (
    apply_temperature,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    record_margin,
    reliability,
    top_two_margin,
    with_temperature,
)


def overconfident(n: int, seed: int, sharpen: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(logits); the reported probabilities use logits * sharpen."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size=(n, 10))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(10, p=row) for row in true])
    sharp = np.exp(logits * sharpen)
    return sharp / sharp.sum(axis=1, keepdims=True), y


def test_ece_of_a_hand_computed_case() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    # Bins: 0.9 holds two rows (acc 0.5, conf 0.9); 0.6 one (acc 1); 0.7 one (acc 1).
    expected = (2 * 0.4 + 1 * 0.4 + 1 * 0.3) / 4
    assert expected_calibration_error(probs, y) == pytest.approx(expected)
    r = reliability(probs, y)
    assert r.count.sum() == 4 and len(r.count) == 15


def test_temperature_scaling_lowers_ece_on_overconfident_predictions() -> None:
    val_probs, val_y = overconfident(4000, seed=1)
    test_probs, test_y = overconfident(4000, seed=2)
    t = fit_temperature(val_probs, val_y)
    assert 3.0 < t < 5.5  # the sharpening was 4
    before = expected_calibration_error(test_probs, test_y)
    after = expected_calibration_error(apply_temperature(test_probs, t), test_y)
    assert before > 0.15
    assert after < 0.03
    # Scaling never changes the predicted label.
    np.testing.assert_array_equal(
        apply_temperature(test_probs, t).argmax(axis=1), test_probs.argmax(axis=1)
    )
    m = calibration_metrics(t, {"test": test_probs}, {"test": test_y})
    assert m["test"]["ece_after"] < m["test"]["ece_before"]
    assert m["test"]["nll_after"] < m["test"]["nll_before"]


def test_well_calibrated_predictions_keep_t_near_one() -> None:
    probs, y = overconfident(4000, seed=3, sharpen=1.0)
    assert fit_temperature(probs, y) == pytest.approx(1.0, abs=0.15)


def test_graph_temperature_matches_numpy() -> None:
    inputs = keras.Input(shape=(), dtype="string", name="text")

    def logits(s: tf.Tensor) -> tf.Tensor:
        n = tf.cast(tf.strings.length(s), tf.float32)
        return tf.stack([n, tf.ones_like(n)], axis=1)

    lengths = keras.layers.Lambda(logits, output_shape=(2,))(inputs)
    model = keras.Model(inputs, keras.layers.Softmax()(lengths))
    calibrated = with_temperature(model, 2.5)
    x = tf.constant(["a", "abc", "abcdef"])
    np.testing.assert_allclose(
        calibrated(x).numpy(), apply_temperature(model(x).numpy(), 2.5), atol=1e-6
    )


def test_reliability_diagram_is_written(tmp_path: Path) -> None:
    probs, y = overconfident(500, seed=4)
    path = tmp_path / "reliability.png"
    plot_reliability(probs, apply_temperature(probs, 4.0), y, 4.0, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fallback(threshold: float, target: float = 0.9, cap: float = 0.4) -> FallbackInfo:
    return FallbackInfo(
        threshold=threshold, target_precision=target, max_fallback_rate=cap, val_fallback_rate=0.0
    )


def test_top_two_margin() -> None:
    probs = np.array([[0.35, 0.30, 0.35], [0.9, 0.05, 0.05], [0.30, 0.35, 0.2]])
    assert top_two_margin(probs) == pytest.approx([0.0, 0.85, 0.05])


def test_the_margin_hands_off_the_near_ties_that_miss_the_target() -> None:
    # 100 held-out rows: 80 clear and right, 20 near ties of which half are wrong.
    clear = np.tile([[0.9, 0.05, 0.05]], (80, 1))
    ties = np.tile([[0.45, 0.40, 0.15]], (20, 1))
    probs = np.vstack([clear, ties])
    y = np.r_[np.zeros(80, int), np.zeros(10, int), np.ones(10, int)]
    fb = _fallback(threshold=0.3)  # every row is over the threshold
    assert record_margin(fb, (probs, y), (probs, y)) == []
    # Kept with a margin of 0.05 or more: all 100 rows, precision 0.9; above: the 80 clear ones.
    # The smallest margin whose kept rows reach 0.9 precision keeps the ties: 0.05.
    assert fb.margin == pytest.approx(0.05)
    fb = _fallback(threshold=0.3, target=0.95)
    record_margin(fb, (probs, y), (probs, y))
    assert fb.margin == pytest.approx(0.85)  # only the clear rows reach 0.95
    assert fb.val_fallback_rate == pytest.approx(0.2) and fb.val_precision == 1.0
    assert fb.val_fallback_rate_without_margin == 0.0
    assert fb.test_fallback_rate == pytest.approx(0.2)
    # Served with the same rule: the near tie falls back, the clear text does not.
    ranked = rank(probs[[0, 80]], descending_order(probs[[0, 80]]), ["a", "b", "c"], top_k=1,
                  threshold=fb.threshold, margin=fb.margin)  # fmt: skip
    assert [p.fallback for p in ranked] == [False, True]


def test_a_margin_over_the_fallback_cap_is_capped_and_said() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=200)
    y = rng.integers(0, 4, size=200)  # a random model: no margin reaches 0.9
    fb = _fallback(threshold=0.0, cap=0.25)
    warnings = record_margin(fb, (probs, y))
    assert fb.target_margin is not None and fb.margin < fb.target_margin
    assert fb.val_fallback_rate is not None and fb.val_fallback_rate <= 0.25
    assert warnings and "capped at margin" in warnings[0]


def test_metadata_without_a_margin_reads_as_none() -> None:
    fb = FallbackInfo.model_validate({"threshold": 0.4, "target_precision": 0.9})
    assert fb.margin == 0.0
