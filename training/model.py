"""Model building: the registered architecture (training.architectures), compiled."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from training import architectures
from training.params import ModelParams


def build_model(
    arch: str, train_texts: Sequence[str], n_labels: int, params: ModelParams
) -> keras.Model:
    """Build and compile ``arch``: input a string tensor [batch], output [batch, n_labels]."""
    model = architectures.get(arch).load()(train_texts, n_labels, params)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        # Targets are one-hot (see training.pipeline) so that label smoothing is available.
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model
