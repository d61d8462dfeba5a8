"""A product of experts' members on frozen features are fitted as logistic regressions.

An encoder's embedding does not change during training, so its linear member
(training.architectures.experts.LinearMember) is a multinomial logistic regression on fixed
features: a convex problem with one regularised optimum, which L-BFGS reaches in seconds. The
gradient steps that train the n-gram member (and its early stopping) only approach that optimum,
at the pace of a learning rate shared with a member of another scale. Each LinearMember gets
the L2-regularised solution (``C`` in scikit-learn's terms) on the fit's training rows, with
their class weights, before the steps start; the steps leave it as it is.

Only where each member gets its own epochs (the k-fold and its refit, files of up to 4,000
rows; ``FitInput.linear_members``). With split validation the members share one early-stopped
epoch count, and there the LinearMembers train by steps as any layer: on the full waimai and
hotel files a regression at this fixed ``C`` scored under the stepped members
(docs/results/e5-encoder.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# scikit-learn's inverse regularisation strength for the members' features (centred, unit
# root-mean-square deviation per value: training.architectures.encoder._encoder_features).
C = 1.0
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
        values = taps(b, training=False)
        for rows, v in zip(out, values if len(members) > 1 else [values], strict=True):
            rows.append(np.asarray(v, dtype=np.float64))
    return [np.concatenate(rows) for rows in out]


def fit_linear_members(
    model: Any, x: Any, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> int:
    """Set every LinearMember of ``model`` to the logistic regression of its features of the
    rows ``x`` (``model``'s inputs) on the labels ``y``; how many members were fitted."""
    from sklearn.linear_model import LogisticRegression

    members = linear_members(model)
    if not members:
        return 0
    n_labels = int(members[0].units)
    present = np.unique(y)
    for layer, features in zip(members, member_features(model, members, x), strict=True):
        kernel = np.zeros((features.shape[1], n_labels), np.float32)
        # A label with no training row here (a small fold) keeps a very low bias.
        bias = np.full(n_labels, -30.0, np.float32)
        if len(present) == 1:
            bias[present[0]] = 0.0
        else:
            lr = LogisticRegression(C=C, max_iter=MAX_ITER).fit(features, y, sample_weight)
            coef, intercept = lr.coef_, lr.intercept_
            if len(present) == 2:  # scikit-learn's binary form: one row for the second class
                coef = np.stack([-coef[0] / 2, coef[0] / 2])
                intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
            kernel[:, present] = coef.T
            bias[present] = intercept
        layer.kernel.assign(kernel)
        layer.bias.assign(bias)
    return len(members)
