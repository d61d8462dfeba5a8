"""transformer: a small encoder (token + position embedding, self-attention), mean-pooled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers, ops

from training.params import ModelParams
from training.vectorizer import make_vectorizer

HEADS = 4
BLOCKS = 1
FFN_MULTIPLIER = 2
ATTENTION_DROPOUT = 0.1


class TokenAndPositionEmbedding(layers.Layer):
    """Token embedding plus a learned embedding of each position; id 0 (padding) is masked."""

    def __init__(self, vocab_size: int, sequence_length: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens = layers.Embedding(vocab_size, dim, mask_zero=True, name="tokens")
        self.positions = layers.Embedding(sequence_length, dim, name="positions")

    def call(self, ids: Any) -> Any:
        positions = ops.arange(ops.shape(ids)[-1])
        return self.tokens(ids) + self.positions(positions)

    def compute_mask(self, ids: Any, mask: Any = None) -> Any:
        return ops.not_equal(ids, 0)


def encoder_block(x: Any, dim: int, dropout: float, name: str) -> Any:
    """Post-norm Transformer block: self-attention and a ReLU feed-forward, each residual.

    ``layers.Add`` (not ``+``) keeps the padding mask flowing to the masked mean pooling.
    """
    key_dim = max(1, dim // HEADS)
    attention = layers.MultiHeadAttention(
        HEADS, key_dim, dropout=ATTENTION_DROPOUT, name=f"{name}_attention"
    )(x, x)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(
        layers.Add(name=f"{name}_add1")(
            [x, layers.Dropout(dropout, name=f"{name}_dropout1")(attention)]
        )
    )
    ffn = layers.Dense(dim * FFN_MULTIPLIER, activation="relu", name=f"{name}_ffn1")(x)
    ffn = layers.Dense(dim, name=f"{name}_ffn2")(ffn)
    return layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(
        layers.Add(name=f"{name}_add2")([x, layers.Dropout(dropout, name=f"{name}_dropout2")(ffn)])
    )


def build_transformer(train_texts: Sequence[str], n_labels: int, p: ModelParams) -> keras.Model:
    """Vectorizer -> token+position embedding -> encoder block(s) -> masked mean -> softmax."""
    vectorizer = make_vectorizer(train_texts, p)
    inputs = keras.Input(shape=(), dtype="string", name="text")
    ids = vectorizer(inputs)
    x = TokenAndPositionEmbedding(
        vectorizer.vocabulary_size(), p.sequence_length, p.embedding_dim, name="embedding"
    )(ids)
    # Attention dropout is kept small; the feature dropout before the softmax does most of the work.
    for i in range(BLOCKS):
        x = encoder_block(x, p.embedding_dim, 0.1, name=f"block{i + 1}")
    x = layers.GlobalAveragePooling1D(name="mean_pool")(x)
    x = layers.Dropout(p.dropout, name="dropout")(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="textcls_transformer")
