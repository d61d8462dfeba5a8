"""Model building: the registered architecture (training.architectures), compiled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from training import architectures
from training.params import ModelParams


class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam with each dense update done by TensorFlow's fused ``ResourceApplyAdam``.

    The same arithmetic as ``keras.optimizers.Adam.update_step`` (``alpha = lr * sqrt(1 -
    beta_2^t) / (1 - beta_1^t)``, epsilon added to ``sqrt(v)``), in one pass over the variable
    instead of one per elementwise op: on ngram/encoder's sparse-input kernel (~35k x 128 on
    2,000 rows) that is about half the time of a training step. Sparse gradients, amsgrad and
    updates under a tf.distribute strategy keep Keras' own update.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        handle = getattr(variable, "handle", None)
        if (
            self.amsgrad
            or handle is None
            or isinstance(gradient, tf.IndexedSlices)
            or tf.distribute.has_strategy()
        ):
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def build_model(
    arch: str,
    train_texts: Sequence[str],
    n_labels: int,
    params: ModelParams,
    features: object | None = None,
) -> keras.Model:
    """Build and compile ``arch``: input a string tensor [batch], output [batch, n_labels].

    ``features``: the run's features cache (``Architecture.make_features``), for the
    architectures that have one.
    """
    builder: Any = architectures.get(arch).load()
    model = (
        builder(train_texts, n_labels, params)
        if features is None
        else builder(train_texts, n_labels, params, features=features)
    )
    model.compile(
        optimizer=FusedAdam(learning_rate=params.learning_rate),
        # Targets are one-hot (see training.stages.fit) so that label smoothing is available.
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model
