"""cnn: the seed architecture, embedding -> parallel Conv1D -> max pool -> dense; towers."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from training.params import ModelParams
from training.vectorizer import make_vectorizer


def cnn_tower(
    vectorizer: layers.TextVectorization, n_labels: int, p: ModelParams, inputs: keras.KerasTensor
) -> keras.KerasTensor:
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


def build_cnn(train_texts: Sequence[str], n_labels: int, p: ModelParams) -> keras.Model:
    """One cnn, or ``p.towers`` of them sharing the vectorizer and averaged."""
    from training.architectures.ensemble import AveragingEnsemble

    vectorizer = make_vectorizer(train_texts, p)
    members = []
    for k in range(p.towers):
        inputs = keras.Input(shape=(), dtype="string", name="text")
        outputs = cnn_tower(vectorizer, n_labels, p, inputs)
        name = "textcls_cnn" if p.towers == 1 else f"cnn_tower_{k}"
        members.append(keras.Model(inputs, outputs, name=name))
    if p.towers == 1:
        return members[0]
    # Towers share the vectorizer and nothing else; each is trained on its own loss and the
    # served probabilities are their average (a cheap ensemble).
    model = AveragingEnsemble(members, name="textcls_cnn")
    model(keras.ops.convert_to_tensor(list(train_texts[:2])))
    return model
