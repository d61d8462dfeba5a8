"""ngram: word (unspaced scripts: character) 1-2-gram and char 2-5-gram TF-IDF into an MLP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from training import tokenize
from training.params import ModelParams

# Character n-grams need a larger vocabulary than words: BANKING77's 9k training texts hold
# ~22k word 1-2-grams and ~47k character 2-5-grams.
CHAR_TOKENS_PER_WORD_TOKEN = 3
CHAR_NGRAM_WIDTHS = (2, 3, 4, 5)
INPUT_DROPOUT = 0.2


def standardize_chars(text: tf.Tensor) -> tf.Tensor:
    """Lower case with runs of whitespace collapsed; punctuation is kept (it carries signal)."""
    return tf.strings.regex_replace(tf.strings.lower(text), r"\s+", " ")


def split_char_ngrams(text: tf.Tensor) -> tf.RaggedTensor:
    """Character 2-5-grams of `` text `` (space-padded, so word starts and ends are grams).

    Plain TensorFlow ops: the exported signature traces them, so ``tf.saved_model.load``
    needs no custom objects.
    """
    chars = tf.strings.unicode_split(tf.strings.join([" ", text, " "]), "UTF-8")
    return tf.strings.ngrams(chars, ngram_width=CHAR_NGRAM_WIDTHS, separator="")


class SparseCounts(layers.TextVectorization):
    """TextVectorization whose symbolic output says what its real one is: sparse.

    Keras 3.15's says dense (``compute_output_spec`` drops ``sparse``), and a model cut after
    the vectorizers (training.distributed.split_at_string_input, which the pipeline's default
    strategy uses to vectorize once per fit) would then densify its inputs.
    """

    def compute_output_spec(self, inputs: Any) -> Any:
        spec = super().compute_output_spec(inputs)
        if not self._lookup_layer.sparse:
            return spec
        return keras.KerasTensor(spec.shape, dtype=spec.dtype, sparse=True)


def make_ngram_vectorizers(
    train_texts: Sequence[str], p: ModelParams
) -> tuple[SparseCounts, SparseCounts]:
    """Word 1-2-gram and char 2-5-gram sparse count vectorizers adapted on the training texts.

    Counts, not ``output_mode="tf_idf"``: Keras 3.15's sparse TF-IDF output fails (GatherNd
    rank error), so the IDF weighting happens in SparseTfidfDense.
    """
    words = SparseCounts(
        max_tokens=p.max_tokens,
        ngrams=2,
        standardize=tokenize.standardize,  # unspaced scripts: character 1-2-grams
        output_mode="count",
        sparse=True,
        name="word_counts",
    )
    chars = SparseCounts(
        max_tokens=p.max_tokens * CHAR_TOKENS_PER_WORD_TOKEN,
        standardize=standardize_chars,
        split=split_char_ngrams,
        output_mode="count",
        sparse=True,
        name="char_counts",
    )
    data = tf.data.Dataset.from_tensor_slices(tf.constant(list(train_texts), tf.string)).batch(1024)
    words.adapt(data)
    chars.adapt(data)
    return words, chars


def inverse_document_frequency(
    vectorizer: layers.TextVectorization, train_texts: Sequence[str]
) -> np.ndarray:
    """Smoothed IDF per vocabulary entry, ``ln((1 + n) / (1 + df)) + 1`` (as scikit-learn)."""
    df = np.zeros(vectorizer.vocabulary_size(), dtype=np.float64)
    texts = tf.constant(list(train_texts), tf.string)
    for start in range(0, len(train_texts), 1024):
        counts = vectorizer(texts[start : start + 1024])
        np.add.at(df, counts.indices[:, 1].numpy(), 1.0)
    return (np.log((1 + len(train_texts)) / (1 + df)) + 1).astype(np.float32)


class SparseTfidfDense(layers.Layer):
    """L2-normalise each sparse TF-IDF block, drop features in training, concat, dense ReLU.

    Sparse all the way: a text has a few hundred n-grams out of ~80k, so the matmul costs
    O(n-grams x units) instead of O(vocabulary x units), several times faster to train and serve.
    """

    def __init__(
        self, units: int, dropout: float, idf: Sequence[np.ndarray], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.dropout = dropout
        self.idf_values = [np.asarray(v, dtype=np.float32) for v in idf]

    def build(self, input_shapes: Any) -> None:
        width = sum(int(shape[-1]) for shape in input_shapes)
        self.kernel = self.add_weight(
            shape=(width, self.units), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.idf = [
            self.add_weight(
                shape=v.shape,
                initializer=keras.initializers.Constant(v),
                trainable=False,
                name=f"idf_{i}",
            )
            for i, v in enumerate(self.idf_values)
        ]

    def call(self, blocks: list[tf.SparseTensor], training: bool = False) -> tf.Tensor:
        normalised = []
        for block, idf in zip(blocks, self.idf, strict=True):
            rows = block.indices[:, 0]
            tfidf = tf.cast(block.values, tf.float32) * tf.gather(idf, block.indices[:, 1])
            n = tf.cast(block.dense_shape[0], tf.int32)
            norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(tfidf), rows, n))
            values = tfidf / tf.maximum(tf.gather(norms, rows), 1e-12)
            normalised.append(tf.SparseTensor(block.indices, values, block.dense_shape))
        x = tf.sparse.concat(axis=1, sp_inputs=normalised, expand_nonconcat_dims=True)
        if training and self.dropout:
            keep = tf.random.uniform(tf.shape(x.values)) >= self.dropout
            x = tf.sparse.retain(x, keep)
            x = tf.SparseTensor(x.indices, x.values / (1.0 - self.dropout), x.dense_shape)
        out = tf.sparse.sparse_dense_matmul(x, self.kernel) + self.bias
        return tf.nn.relu(out)

    def compute_output_shape(self, input_shapes: Any) -> tuple[Any, int]:
        return (input_shapes[0][0], self.units)


def build_ngram(train_texts: Sequence[str], n_labels: int, p: ModelParams) -> keras.Model:
    """Sparse L2-normalised word + char TF-IDF -> Dense(dense_units) -> dropout -> softmax."""
    words, chars = make_ngram_vectorizers(train_texts, p)
    inputs = keras.Input(shape=(), dtype="string", name="text")
    idf = [inverse_document_frequency(v, train_texts) for v in (words, chars)]
    x = SparseTfidfDense(p.dense_units, INPUT_DROPOUT, idf, name="dense")(
        [words(inputs), chars(inputs)]
    )
    x = layers.Dropout(p.dropout, name="dropout")(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="textcls_ngram")
