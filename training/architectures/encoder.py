"""encoder: frozen USE multilingual v3 sentence embeddings beside n-gram TF-IDF features, one head.

The pretrained encoder knows paraphrases ("my card never came" ~ "the card has not arrived")
that 10-30 examples per label cannot teach; the n-gram features keep the exact words and
characters that separate close intents. Both go into one softmax (README Results has the
measured alternatives: embeddings alone, an MLP head, the encoder fine-tuned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
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
    embedding: keras.KerasTensor,
    ngram_features: bool = True,
) -> Any:
    """Probabilities from the encoder's features and (optionally) the text's n-grams."""
    x = layers.Rescaling(FEATURE_SCALE, name="feature_scale")(embedding)
    x = layers.Dropout(FEATURE_DROPOUT, name="feature_dropout")(x)
    if ngram_features:
        words, chars = make_ngram_vectorizers(train_texts, p)
        idf = [inverse_document_frequency(v, train_texts) for v in (words, chars)]
        ngrams = SparseTfidfDense(p.dense_units, INPUT_DROPOUT, idf, name="dense")(
            [words(text), chars(text)]
        )
        ngrams = layers.Dropout(p.dropout, name="dropout")(ngrams)
        x = layers.Concatenate(name="features")([x, ngrams])
    return layers.Dense(n_labels, activation="softmax", name="probabilities", dtype="float32")(x)


class EncoderClassifier(keras.Model):
    """``call``: text -> frozen encoder features -> head. While training, the features of the
    training texts come from a cache filled once at build time: the encoder is frozen, so
    recomputing them every epoch would only repeat the same work (it is ~98% of the compute).

    The cache lives outside Keras' tracking and is read only when ``training=True``, so the
    exported ``serving_default`` (traced with ``training=False``) holds neither the training
    texts nor their features.
    """

    def __init__(self, encoder: keras.layers.Layer, head: keras.Model, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head
        object.__setattr__(self, "_cache", None)

    def cache_features(self, texts: Sequence[str], batch_size: int = 256) -> None:
        """Encode ``texts`` once; training steps look their features up instead."""
        unique = list(dict.fromkeys(texts))
        encode = tf.function(self.encoder, input_signature=[tf.TensorSpec([None], tf.string)])
        feats = [
            encode(tf.constant(unique[i : i + batch_size]))
            for i in range(0, len(unique), batch_size)
        ]
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(unique), tf.range(len(unique), dtype=tf.int64)
            ),
            default_value=-1,
        )
        object.__setattr__(self, "_cache", (table, tf.concat(feats, axis=0)))

    def _features(self, text: Any, training: bool) -> Any:
        if not training or self._cache is None:
            return self.encoder(text)
        table, feats = self._cache
        index = table.lookup(text)
        return tf.cond(
            tf.reduce_all(index >= 0),
            lambda: tf.gather(feats, tf.maximum(index, 0)),
            lambda: self.encoder(text),  # a text outside the cache: encode the batch
        )

    def call(self, text: Any, training: bool = False) -> Any:
        return self.head([text, self._features(text, training)], training=training)


def build_encoder(train_texts: Sequence[str], n_labels: int, p: ModelParams) -> keras.Model:
    """String -> [frozen USE multilingual v3 features | sparse TF-IDF -> Dense ReLU] -> softmax."""
    from training.encoder.layers import FEATURES_DIM, UseMultilingualEncoder
    from training.encoder.weights import require_extra

    require_extra()
    encoder = UseMultilingualEncoder(features=True, name="use_multilingual")
    text = keras.Input(shape=(), dtype="string", name="text")
    features = keras.Input(shape=(FEATURES_DIM,), name="encoder_features")
    head = keras.Model(
        [text, features], build_head(train_texts, n_labels, p, text, features), name="head"
    )
    model = EncoderClassifier(encoder, head, name="textcls_encoder")
    model.cache_features(train_texts)
    model(tf.constant(list(train_texts[:2])))  # build
    return model
