"""A product of experts' members on frozen features are fitted as logistic regressions.

An encoder's embedding does not change during training, so its linear member
(training.architectures.experts.LinearMember) is a multinomial logistic regression on fixed
features: a convex problem with one regularised optimum, which L-BFGS reaches in seconds. The
gradient steps that train the n-gram member (and its early stopping) only approach that optimum,
at the pace of a learning rate shared with a member of another scale. Each LinearMember gets
the L2-regularised solution on the fit's training rows, with their class weights, before the
steps start; the steps leave it as it is. The strength (``C`` in scikit-learn's terms) is
chosen per member and per fit from CS by a 3-fold cross-validation of the log-loss on those
rows alone: two-label sentiment wants 10-300 times the shrinkage 77 intents do.

Only where each member gets its own epochs (the k-fold and its refit, files of up to 4,000
rows; ``FitInput.linear_members``). With split validation the members share one early-stopped
epoch count, and there the LinearMembers train by steps as any layer: on the full waimai and
hotel files regressions (at a fixed ``C``, and at one chosen as here) scored under the stepped
members on average (docs/results/e5-encoder.md).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

# scikit-learn's inverse regularisation strengths tried for the members' features (centred,
# unit root-mean-square deviation per value: training.architectures.encoder._encoder_features).
# From the shrinkage two-label sentiment on a few thousand rows prefers to the little that
# many-label intent files at 10-30 rows a label do (docs/results/e5-encoder.md).
CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
FOLDS = 3
CHOICE_TOL = 1e-3
MAX_ITER = 1000


def linear_members(model: Any) -> list[Any]:
    """``model``'s LinearMember layers, in the product of experts' member order."""
    from training.architectures.experts import LinearMember, find_experts

    experts = find_experts(model)
    if experts is None:
        return []
    layers = [z._keras_history[0] for z in experts.member_logits]
    return [layer for layer in layers if isinstance(layer, LinearMember)]


def member_features(model: Any, members: list[Any], x: Any, batch_size: int = 512) -> list[Any]:
    """What each member layer takes, for every row of ``x`` (``model``'s inputs)."""
    import keras
    import tensorflow as tf

    taps = keras.Model(model.inputs, [m._inbound_nodes[0].input_tensors[0] for m in members])
    out: list[list[np.ndarray]] = [[] for _ in members]
    for b in tf.data.Dataset.from_tensor_slices(x).batch(batch_size):
        # One member's taps answer one tensor, not a list of one: flatten both alike.
        for rows, v in zip(out, tf.nest.flatten(taps(b, training=False)), strict=True):
            rows.append(np.asarray(v, dtype=np.float64))
    return [np.concatenate(rows) for rows in out]


def fit_linear_members(
    model: Any, x: Any, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> dict[str, float | None]:
    """Set every LinearMember of ``model`` to the logistic regression of its features of the
    rows ``x`` (``model``'s inputs) on the labels ``y``; the strength (``C``) each member got,
    by layer name (None: the rows hold one label, and the member only says so)."""
    members = linear_members(model)
    strengths: dict[str, float | None] = {}
    if not members:
        return strengths
    n_labels = int(members[0].units)
    present = np.unique(y)
    for layer, features in zip(members, member_features(model, members, x), strict=True):
        kernel = np.zeros((features.shape[1], n_labels), np.float32)
        # A label with no training row here (a small fold) keeps a very low bias.
        bias = np.full(n_labels, -30.0, np.float32)
        strengths[layer.name] = None
        if len(present) == 1:
            bias[present[0]] = 0.0
        else:
            coef, intercept, strengths[layer.name] = regression(features, y, sample_weight)
            if len(present) == 2:  # scikit-learn's binary form: one row for the second class
                coef = np.stack([-coef[0] / 2, coef[0] / 2])
                intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
            kernel[:, present] = coef.T
            bias[present] = intercept
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    return strengths


def regression(
    features: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """scikit-learn's (coef_, intercept_) of the logistic regression of ``y`` on ``features``
    at the strength in CS that a FOLDS-fold cross-validation of the log-loss prefers (the
    folds' fits to a loose tolerance, CHOICE_TOL: they only rank the strengths), and that
    strength; CS[-1] where the largest label has one row, with nothing to cross-validate on."""
    from joblib import cpu_count
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    strength = CS[-1]
    folds = min(FOLDS, int(np.bincount(y).max()))
    if folds >= 2:  # else one row a label: nothing to cross-validate on
        search = LogisticRegressionCV(
            Cs=list(CS),
            cv=StratifiedKFold(folds, shuffle=True, random_state=0),
            scoring="neg_log_loss",
            max_iter=MAX_ITER,
            tol=CHOICE_TOL,
            refit=False,
            # The folds in processes of their own: the steps have not started, so the cores
            # are free.
            n_jobs=min(folds, cpu_count()),
        )
        with warnings.catch_warnings():  # 1.9's notice of its attributes' future form
            warnings.simplefilter("ignore", FutureWarning)
            search.fit(features, y, sample_weight=sample_weight)
        # Mean log-loss score per strength over the folds ([folds, len(CS)]; one entry per
        # class in the attribute's legacy form, the same array for a multinomial fit).
        scores = search.scores_
        scores = next(iter(scores.values())) if isinstance(scores, dict) else scores
        strength = CS[int(np.argmax(np.asarray(scores).reshape(-1, len(CS)).mean(axis=0)))]
    fitted = LogisticRegression(C=strength, max_iter=MAX_ITER)
    fitted.fit(features, y, sample_weight=sample_weight)
    return fitted.coef_, fitted.intercept_, strength
