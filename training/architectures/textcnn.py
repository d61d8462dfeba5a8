"""textcnn: Kim (2014)-style CNN, one Conv1D per kernel width (2-5) with max pooling, softmax."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from training.params import ModelParams
from training.vectorizer import make_vectorizer

# Wider than the seed cnn's (1, 2, 3) and without its hidden dense layer: the filters'
# max-pooled activations feed the softmax directly, as in Kim (2014).
KERNEL_WIDTHS = (2, 3, 4, 5)
EMBEDDING_DROPOUT = 0.2


def build_textcnn(train_texts: Sequence[str], n_labels: int, p: ModelParams) -> keras.Model:
    """Embedding -> spatial dropout -> Conv1D per width -> max pool -> dropout -> softmax."""
    vectorizer = make_vectorizer(train_texts, p)
    inputs = keras.Input(shape=(), dtype="string", name="text")
    x = vectorizer(inputs)
    x = layers.Embedding(vectorizer.vocabulary_size(), p.embedding_dim, name="embedding")(x)
    x = layers.SpatialDropout1D(EMBEDDING_DROPOUT, name="embedding_dropout")(x)
    pooled = [
        layers.GlobalMaxPooling1D(name=f"max_pool_{k}")(
            layers.Conv1D(p.filters, k, padding="same", activation="relu", name=f"conv_{k}")(x)
        )
        for k in KERNEL_WIDTHS
    ]
    x = layers.Concatenate(name="concat")(pooled)
    x = layers.Dropout(p.dropout, name="dropout")(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="textcls_textcnn")
