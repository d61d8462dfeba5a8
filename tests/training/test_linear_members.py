"""Members on frozen features fitted as logistic regressions (training.stages.linear_members)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from training.architectures.experts import LinearMember, MemberLosses, ProductOfExperts
from training.stages.linear_members import CS, fit_linear_members, linear_members, regression


def _model(n_labels: int) -> keras.Model:
    """A LinearMember on input ``a`` through a fixed layer, a trained member on input ``b``."""
    keras.utils.set_random_seed(0)
    a, b = keras.Input(shape=(4,), name="a"), keras.Input(shape=(3,), name="b")
    frozen = keras.layers.Dense(5, trainable=False, name="frozen")(a)
    za = LinearMember(n_labels, name="a_logits")(frozen)
    zb = keras.layers.Dense(n_labels, name="b_logits")(b)
    model = MemberLosses([a, b], ProductOfExperts(name="probabilities")([za, zb]))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    return model


def _rows(n_labels: int, n: int = 90) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(1)
    y = np.arange(n) % n_labels
    a = rng.normal(size=(n, 4)) + y[:, None]
    return (a.astype(np.float32), rng.normal(size=(n, 3)).astype(np.float32)), y


@pytest.mark.parametrize("n_labels", [2, 3])
def test_a_linear_member_answers_the_logistic_regression_of_its_features(n_labels: int) -> None:
    model = _model(n_labels)
    x, y = _rows(n_labels)
    strengths = fit_linear_members(model, x, y)
    assert list(strengths) == ["a_logits"] and strengths["a_logits"] in CS
    features = np.asarray(model.get_layer("frozen")(x[0]), dtype=np.float64)
    member = keras.Model(model.inputs, model.get_layer("a_logits").output)
    got = keras.ops.convert_to_numpy(keras.ops.softmax(member(x)))
    # The regression at the strength it reports, fitted on every row.
    expected = LogisticRegression(C=strengths["a_logits"], max_iter=1000).fit(features, y)
    gap = np.abs(got - expected.predict_proba(features)).max()
    assert gap < 2e-3, gap  # within the solvers' tolerance


def test_the_strength_is_chosen_on_held_out_folds_of_the_rows() -> None:
    rng = np.random.default_rng(2)
    y = np.arange(120) % 2
    clean = rng.normal(size=(120, 3)) + 3.0 * y[:, None]  # separable: little shrinkage
    noisy = np.c_[rng.normal(size=(120, 40)), 0.3 * y]  # one weak signal among noise
    strengths = []
    for features in (clean, noisy):
        coef, _, reported = regression(features, y)
        norms = {
            c: np.abs(LogisticRegression(C=c, max_iter=1000).fit(features, y).coef_ - coef).max()
            for c in CS
        }
        strengths.append(min(norms, key=norms.__getitem__))
        assert strengths[-1] == reported
    assert strengths[0] > strengths[1], strengths


def test_the_steps_leave_a_linear_member_as_fitted_and_train_the_others() -> None:
    model = _model(3)
    x, y = _rows(3)
    fit_linear_members(model, x, y)
    before = {w.path: np.array(w.numpy()) for w in model.weights}
    model.fit(x, np.eye(3)[y], epochs=2, verbose=0)
    after = {w.path: np.array(w.numpy()) for w in model.weights}
    assert [p for p in before if not np.array_equal(before[p], after[p])] == [
        "b_logits/kernel",
        "b_logits/bias",
    ]
    assert linear_members(model) == [model.get_layer("a_logits")]


def test_a_label_without_rows_gets_no_probability() -> None:
    model = _model(4)
    x, y = _rows(3)  # label 3 has no training row
    fit_linear_members(model, x, y)
    member = keras.Model(model.inputs, model.get_layer("a_logits").output)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(member(x)))
    assert probabilities[:, 3].max() < 1e-9
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("closed_form", [True, False])
def test_the_fit_stage_fits_them_only_where_the_job_says(closed_form: bool) -> None:
    from types import SimpleNamespace

    from training.config import TrainConfig
    from training.stages.fit import FitInput, _fit_linear_members

    model = _model(3)
    x, y = _rows(3)
    built: Any = SimpleNamespace(trainee=SimpleNamespace(model=model), train_x=x, model=model)
    job = FitInput(texts=[], y=y, n_labels=3, linear_members=closed_form)
    cfg = TrainConfig(data=Path("unused.csv"))
    before = np.array(model.get_layer("a_logits").kernel.numpy())
    _fit_linear_members(cfg, job, built)
    member = model.get_layer("a_logits")
    assert member.trainable is not closed_form
    assert np.array_equal(before, member.kernel.numpy()) is not closed_form
    # Where it is not fitted, the steps train it (the model was compiled before the switch).
    fitted = np.array(member.kernel.numpy())
    model.fit(x, np.eye(3)[y], epochs=2, verbose=0)
    assert np.array_equal(fitted, member.kernel.numpy()) is closed_form
