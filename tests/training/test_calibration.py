"""Temperature scaling lowers ECE on over-confident predictions, in numpy and in the graph."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.calibration import (
    apply_temperature,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    plot_reliability,
    reliability,
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
