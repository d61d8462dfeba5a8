"""What the fit stage trains and predicts with: the model, or its body on inputs computed once.

The string layers (vectorizers) are deterministic, so their outputs of every row can be
computed once per fit instead of once per step; the body that takes them shares every weight
with the string-in model, which is what gets exported. On replicas (tf.distribute) the strings
are vectorized in tf.data and the body trains under the strategy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.config import Strategy


@dataclass
class Trainee:
    """The compiled Keras model that is fit, and how texts become its inputs (every row at
    once): the texts as a string tensor, or the string layers' outputs and cached features."""

    model: Any
    inputs: Callable[[list[str]], Any]

    @classmethod
    def on_strings(cls, model: Any) -> Trainee:
        """``model`` itself, fed the texts as a string tensor."""
        import tensorflow as tf

        return cls(model, lambda texts: tf.constant(texts, tf.string))

    def predict(self, texts: list[str], batch_size: int = 512) -> np.ndarray:
        """Probabilities [len(texts), n_labels], as the string-in model would give them."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self.predict_inputs(self.inputs(texts), batch_size)

    def predict_inputs(self, x: Any, batch_size: int = 512) -> np.ndarray:
        """``predict`` on inputs already computed by ``inputs``."""
        return self.predict_members(x, batch_size)[0]

    def predict_members(self, x: Any, batch_size: int = 512) -> tuple[np.ndarray, Any]:
        """``predict_inputs``, and for a product of experts its members' log-probabilities
        [members, rows, n_labels] (training.stages.members), None for other models."""
        import tensorflow as tf

        from training.architectures.experts import find_experts

        experts = find_experts(self.model)
        probs, members = [], []
        for b in tf.data.Dataset.from_tensor_slices(x).batch(batch_size):
            probs.append(np.asarray(self.model(b, training=False), dtype=np.float32))
            if experts is not None:  # the eager call left its members' outputs there
                members.append(np.stack([np.asarray(z) for z in experts.member_log_probabilities]))
        return np.concatenate(probs), (np.concatenate(members, axis=1) if members else None)


@contextlib.contextmanager
def strategy_scope(name: Strategy) -> Iterator[int]:
    """Build the model under a tf.distribute strategy; yields the number of replicas."""
    import tensorflow as tf

    if name == "default":
        yield 1
        return
    if name == "mirrored":
        # MirroredStrategy() alone mirrors over GPUs and falls back to ONE CPU; with no GPU,
        # mirror over every logical CPU device so that N CPU devices really get N replicas.
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        strategy: tf.distribute.Strategy = tf.distribute.MirroredStrategy(devices=devices)
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()  # workers from TF_CONFIG
    with strategy.scope():
        yield int(strategy.num_replicas_in_sync)


def _compile_like(body: Any, model: Any) -> None:
    import keras

    body.compile(
        optimizer=model.optimizer,
        loss=model.loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def replica_trainee(model: Any, sample_texts: list[str]) -> tuple[Any, Callable[[Any], Any]]:
    """The compiled model body and a tf.data map to its features (training.distributed).

    Call it inside the strategy's scope: the body's compile state belongs to the strategy.
    """
    from training.distributed import split_at_string_input, vectorize

    string_layers, body = split_at_string_input(model, sample_texts)
    _compile_like(body, model)

    def features(ds: Any) -> Any:
        return ds.map(lambda x, *rest: (vectorize(string_layers, x), *rest))

    return body, features


def default_trainee(model: Any, sample_texts: list[str], features: Any | None) -> Trainee:
    """One replica: cut the model (the encoder: its head) after the string layers."""
    import tensorflow as tf

    from training.distributed import split_at_string_input, vectorize

    target = model if features is None else model.head  # head: [text, features(text)]

    def extra(texts: list[str]) -> tuple[Any, ...]:
        return () if features is None else (features(texts),)

    try:
        string_layers, body = split_at_string_input(target, sample_texts, allow_sparse=True)
    except (ValueError, AttributeError):  # an ensemble, a shared string layer: as it is
        if features is None:
            return Trainee.on_strings(model)
        string_layers, body = [], target

    def inputs(texts: list[str]) -> Any:
        x = tf.constant(texts, tf.string)
        if not string_layers:
            return (x, *extra(texts))
        vectorized = vectorize(string_layers, x)
        if features is None:
            return vectorized
        return (*tf.nest.flatten(vectorized, expand_composites=False), *extra(texts))

    if body is not model:
        _compile_like(body, model)
    return Trainee(body, inputs)
