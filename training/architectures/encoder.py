"""encoder: frozen USE multilingual v3 sentence embeddings beside n-gram TF-IDF features, one head.

The pretrained encoder knows paraphrases ("my card never came" ~ "the card has not arrived")
that 10-30 examples per label cannot teach; the n-gram features keep the exact words and
characters that separate close intents. Both go into one softmax (docs/results/accuracy.md has
the alternatives: embeddings alone, an MLP head, the encoder fine-tuned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from training.architectures.ngram import (
    INPUT_DROPOUT,
    SparseTfidfDense,
    inverse_document_frequency,
    make_ngram_vectorizers,
)
from training.params import ModelParams

FEATURE_DROPOUT = 0.1
# The encoder's features are unit vectors (three blocks of 320-512 values ~0.04): scaled so that the
# softmax layer reaches confident logits at the shared learning rate (1e-3).
FEATURE_SCALE = 10.0


def build_head(
    train_texts: Sequence[str],
    n_labels: int,
    p: ModelParams,
    text: keras.KerasTensor,
    features: keras.KerasTensor,
) -> Any:
    """Probabilities from the encoder's head features and the text's n-grams."""
    x = layers.Rescaling(FEATURE_SCALE, name="feature_scale")(features)
    x = layers.Dropout(FEATURE_DROPOUT, name="feature_dropout")(x)
    words, chars = make_ngram_vectorizers(train_texts, p)
    idf = [inverse_document_frequency(v, train_texts) for v in (words, chars)]
    ngrams = SparseTfidfDense(p.dense_units, INPUT_DROPOUT, idf, name="dense")(
        [words(text), chars(text)]
    )
    ngrams = layers.Dropout(p.dropout, name="dropout")(ngrams)
    x = layers.Concatenate(name="features")([x, ngrams])
    return layers.Dense(n_labels, activation="softmax", name="probabilities", dtype="float32")(x)


class EncoderFeatures:
    """The frozen encoder's features of every distinct text a training run sees, each text
    encoded once: the fold models, the refit and the trainer's own predictions (held-out rows
    after every epoch, val, test, out-of-scope) all read them from here. The encoder is frozen
    and deterministic, and it is ~98% of the compute of a step.

    One per training run (``training.train.train`` makes it and drops it at the end), never
    inside a model: the exported ``serving_default`` runs ``encoder`` itself on its input.
    """

    def __init__(self, encoder: keras.layers.Layer | None = None, batch_size: int = 256) -> None:
        from training.encoder.layers import UseMultilingualEncoder

        self.encoder = encoder or UseMultilingualEncoder(returns="pooled", name="use_multilingual")
        # Built by an eager call (on no text): SentencePiece's resource, made on first use
        # inside a tf.function, would live in that function's graph only.
        self.encoder(tf.constant([], tf.string))
        self.batch_size = batch_size
        self.encoded = 0  # texts run through the encoder so far
        self._rows: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None
        self.renew()

    def renew(self) -> None:
        """Give the encoder a new SentencePiece resource; ``build_encoder`` calls this, since
        ``fit`` seeds TensorFlow (dropping the old resource) before every build
        (``SentencePieceTokens.renew``)."""
        self.encoder.tokens.renew()
        self._encode = tf.function(self.encoder, input_signature=[tf.TensorSpec([None], tf.string)])

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), 512] pooled vectors (before the DAN layers, which the head
        holds): cached rows, the texts not seen yet encoded now."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._rows]
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            self._blocks.append(np.asarray(self._encode(tf.constant(batch, tf.string))))
            self._rows.update((t, len(self._rows)) for t in batch)
            self.encoded += len(batch)
            self._matrix = None
        if self._matrix is None:
            width = int(self.encoder.compute_output_shape((None,))[1])
            self._matrix = (
                np.concatenate(self._blocks) if self._blocks else np.zeros((0, width), np.float32)
            )
        return self._matrix[np.array([self._rows[t] for t in texts], dtype=np.int64)]


class EncoderClassifier(keras.Model):
    """``call``: text -> frozen encoder features -> head (``head([text, features])``).

    Training fits ``head`` alone on features looked up in the run's EncoderFeatures
    (training.stages.fit); this model, which shares the head's weights, is what gets evaluated
    against the export and exported, its ``serving_default`` traced through ``encoder``.
    """

    def __init__(self, encoder: keras.layers.Layer, head: keras.Model, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head

    def call(self, text: Any, training: bool = False) -> Any:
        return self.head([text, self.encoder(text)], training=training)


def build_encoder(
    train_texts: Sequence[str],
    n_labels: int,
    p: ModelParams,
    features: EncoderFeatures | None = None,
) -> keras.Model:
    """String -> [frozen USE multilingual v3 features | sparse TF-IDF -> Dense ReLU] -> softmax.

    ``features``: the run's shared cache (its encoder becomes this model's); a fresh one
    (a fresh encoder) without.
    """
    from training.encoder.layers import POOLED_DIM, DanFeatures
    from training.encoder.weights import require_extra

    require_extra()
    if features is None:
        features = EncoderFeatures()
    else:
        features.renew()
    text = keras.Input(shape=(), dtype="string", name="text")
    pooled = keras.Input(shape=(POOLED_DIM,), name="encoder_pooled")
    encoder = features.encoder
    dan = DanFeatures(encoder.dan_weights(), encoder.eps, trainable=p.fine_tune, name="dan")
    head = keras.Model(
        [text, pooled], build_head(train_texts, n_labels, p, text, dan(pooled)), name="head"
    )
    model = EncoderClassifier(features.encoder, head, name="textcls_encoder")
    model(keras.Input(shape=(), dtype="string"))  # build, symbolically: no text is encoded
    return model
