"""Model building: a registry of architectures, each raw strings in, softmax probabilities out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from training.params import ModelParams

# An architecture maps (adapted vectorizer, number of labels, params) to the layers after the
# string input; build_model adds the input, the vectorizer and compiles.
Architecture = Callable[[layers.TextVectorization, int, ModelParams, keras.KerasTensor], Any]
ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(name: str) -> Callable[[Architecture], Architecture]:
    """Decorator: make an architecture selectable by ``--arch name``."""

    def add(fn: Architecture) -> Architecture:
        ARCHITECTURES[name] = fn
        return fn

    return add


@register_architecture("cnn")
def cnn(
    vectorizer: layers.TextVectorization, n_labels: int, p: ModelParams, inputs: keras.KerasTensor
) -> Any:
    """Embedding -> parallel Conv1D (one per kernel size) -> global max pooling -> dense."""
    x = vectorizer(inputs)
    x = layers.Embedding(vectorizer.vocabulary_size(), p.embedding_dim, name="embedding")(x)
    if p.embedding_dropout:
        x = layers.SpatialDropout1D(p.embedding_dropout, name="embedding_dropout")(x)
    branches = [
        layers.GlobalMaxPooling1D(name=f"max_pool_{k}")(
            layers.Conv1D(p.filters, k, padding="same", activation="relu", name=f"conv_{k}")(x)
        )
        for k in p.kernel_sizes
    ]
    x = branches[0] if len(branches) == 1 else layers.Concatenate(name="concat")(branches)
    x = layers.Dropout(p.dropout, name="dropout_features")(x)
    x = layers.Dense(p.dense_units, activation="relu", name="dense")(x)
    x = layers.Dropout(p.dropout, name="dropout")(x)
    return layers.Dense(n_labels, activation="softmax", name="probabilities", dtype="float32")(x)


def make_vectorizer(train_texts: Sequence[str], p: ModelParams) -> layers.TextVectorization:
    """A TextVectorization adapted on the training texts only (never on val/test)."""
    vectorizer = layers.TextVectorization(
        max_tokens=p.max_tokens,
        output_mode="int",
        output_sequence_length=p.sequence_length,
        ngrams=p.ngrams if p.ngrams > 1 else None,
        name="vectorizer",
    )
    vectorizer.adapt(np.asarray(train_texts, dtype=object), batch_size=1024)
    return vectorizer


def architecture_names() -> list[str]:
    """Every ``--arch``: those registered here and training.architectures' whole-model builders."""
    from training.architectures import BUILDERS

    return sorted({*ARCHITECTURES, *BUILDERS})


def build_model(
    arch: str, train_texts: Sequence[str], n_labels: int, params: ModelParams
) -> keras.Model:
    """Build and compile ``arch``: input a string tensor [batch], output [batch, n_labels]."""
    from training.architectures import BUILDERS  # it imports this module, so not at the top

    if arch in BUILDERS:
        model = BUILDERS[arch](train_texts, n_labels, params)
    elif arch in ARCHITECTURES:
        vectorizer = make_vectorizer(train_texts, params)
        members = []
        for k in range(params.towers):
            inputs = keras.Input(shape=(), dtype="string", name="text")
            outputs = ARCHITECTURES[arch](vectorizer, n_labels, params, inputs)
            name = f"textcls_{arch}" if params.towers == 1 else f"{arch}_tower_{k}"
            members.append(keras.Model(inputs, outputs, name=name))
        if params.towers == 1:
            model = members[0]
        else:
            # Towers share the vectorizer and nothing else; each is trained on its own loss
            # and the served probabilities are their average (a cheap ensemble).
            from training.architectures.ensemble import AveragingEnsemble

            model = AveragingEnsemble(members, name=f"textcls_{arch}")
            model(keras.ops.convert_to_tensor(list(train_texts[:2])))
    else:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(architecture_names())}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        # Targets are one-hot (see training.pipeline) so that label smoothing is available.
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model
