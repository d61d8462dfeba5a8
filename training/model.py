"""Model building: the registered architecture (training.architectures), compiled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from training import architectures
from training.params import ModelParams


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
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        # Targets are one-hot (see training.pipeline) so that label smoothing is available.
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model
