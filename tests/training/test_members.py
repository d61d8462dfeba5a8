"""A product of experts' members: their own variables and epochs (training.stages.members)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from training.architectures.experts import (
    MemberLosses,
    ProductOfExperts,
    find_experts,
    member_weights,
)
from training.stages.members import MemberCurves, MemberSnapshots, log_softmax, product

N_LABELS = 3


def _two_members(seed: int, shared: bool = False) -> keras.Model:
    """Two members on their own inputs; with ``shared``, both also read one trainable layer."""
    keras.utils.set_random_seed(seed)
    a = keras.Input(shape=(4,), name="a")
    keras_input_b = keras.Input(shape=(6,), name="b")
    b = keras_input_b[:, :5]  # an op on the way, not a layer
    xa = a
    if shared:
        both = keras.layers.Dense(2, name="shared")(a)
        xa = keras.layers.Concatenate()([a, both])
        b = keras.layers.Concatenate()([b, both])
    za = keras.layers.Dense(N_LABELS, name="a_logits")(xa)
    hidden = keras.layers.Dense(6, activation="relu", name="b_hidden")(b)
    zb = keras.layers.Dense(N_LABELS, name="b_logits")(hidden)
    model = MemberLosses([a, keras_input_b], ProductOfExperts(name="probabilities")([za, zb]))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    return model


def _data() -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, N_LABELS, 64)
    x = [rng.normal(size=(64, 4)) + y[:, None], rng.normal(size=(64, 6)) - y[:, None]]
    return [v.astype(np.float32) for v in x], np.eye(N_LABELS, dtype=np.float32)[y]


def _names(variables: list[Any]) -> set[str]:
    return {v.path.split("/")[0] for v in variables}


def test_each_member_owns_the_variables_on_its_path_alone() -> None:
    owned = member_weights(_two_members(0))
    assert [_names(vs) for vs in owned] == [{"a_logits"}, {"b_hidden", "b_logits"}]
    # A layer feeding both members is neither's own.
    owned = member_weights(_two_members(0, shared=True))
    assert [_names(vs) for vs in owned] == [{"a_logits"}, {"b_hidden", "b_logits"}]


def test_an_eager_call_leaves_the_members_the_product_is_made_of() -> None:
    model = _two_members(0)
    x, _ = _data()
    answer = np.asarray(model(x))
    logs = np.stack([np.asarray(z) for z in find_experts(model).member_log_probabilities])
    assert logs.shape == (2, 64, N_LABELS)
    np.testing.assert_allclose(product(logs), answer, atol=1e-6)


class _Every(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.after: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.after.append([np.array(v.numpy()) for v in self.model.weights])


def test_snapshots_keep_each_member_as_it_was_after_its_own_epoch() -> None:
    x, y = _data()
    plain, every = _two_members(1), _Every()
    plain.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0, callbacks=[every])
    model = _two_members(1)
    snaps = MemberSnapshots(member_weights(model), [1, 4])
    model.fit(x, y, epochs=4, batch_size=16, shuffle=False, verbose=0, callbacks=[snaps])
    index = {v.path: i for i, v in enumerate(plain.weights)}
    for v in model.weights:
        name = v.path.split("/")[0]
        epoch = 0 if name == "a_logits" else 3  # member a's own epoch, or the last
        np.testing.assert_allclose(v.numpy(), every.after[epoch][index[v.path]], atol=1e-6)
    kernel = index["a_logits/kernel"]
    assert not np.allclose(every.after[0][kernel], every.after[3][kernel])


def test_each_member_gets_the_epoch_its_own_curve_chooses() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    curves = MemberCurves(epochs=6, n_rows=len(y))
    right = np.eye(N_LABELS)[y]
    for epoch in range(6):
        # Member 0 is surest at epoch 2 (0-based) then drifts; member 1 keeps improving.
        sure = [1.0, 2.0, 4.0, 3.0, 2.0, 1.0][epoch], float(epoch + 1)
        logs = np.stack([log_softmax(s * right) for s in sure])
        curves.record(epoch, np.arange(3), logs[:, :3])
        curves.record(epoch, np.arange(3, 6), logs[:, 3:])
    assert curves.choose(y, horizon=6, tie=0.005) == [2, 5]
    assert curves.choose(y, horizon=4, tie=0.005) == [2, 3]
    expected = product(np.stack([log_softmax(4.0 * right), log_softmax(6.0 * right)]))
    np.testing.assert_allclose(curves.at([2, 5]), expected, atol=1e-6)


def test_the_body_cut_after_the_string_layers_still_sums_the_members_losses() -> None:
    """The trainer fits the body (training.distributed.split_at_string_input): it must train
    each member on its own loss, not one loss on the product."""
    from training.distributed import split_at_string_input

    keras.utils.set_random_seed(0)
    texts = ["card arrived", "card lost", "refund please", "refund late", "top up", "top up failed"]
    y = np.eye(N_LABELS, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
    text = keras.Input(shape=(), dtype="string", name="text")
    words = keras.layers.TextVectorization(output_mode="multi_hot", name="words")
    words.adapt(texts)
    counts = words(text)
    z = [keras.layers.Dense(N_LABELS, name=f"m{i}")(counts) for i in range(2)]
    model = MemberLosses(text, ProductOfExperts(name="probabilities")(z))
    _, body = split_at_string_input(model, texts)
    assert isinstance(body, MemberLosses)
    body.compile(loss="categorical_crossentropy")
    x = words(np.array(texts))
    loss = body.evaluate(x, y, verbose=0)
    body(x)
    members = find_experts(body).member_probabilities
    expected = sum(
        float(keras.losses.categorical_crossentropy(y, np.asarray(p)).numpy().mean())
        for p in members
    )
    assert loss == pytest.approx(expected, rel=1e-5)
