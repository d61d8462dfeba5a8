"""ngram: word 1-2-gram and char 2-5-gram TF-IDF features computed in the graph, into an MLP."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import layers

from training.model import ModelParams

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


def make_ngram_vectorizers(
    train_texts: Sequence[str], p: ModelParams
) -> tuple[layers.TextVectorization, layers.TextVectorization]:
    """Word 1-2-gram and character 2-5-gram TF-IDF vectorizers adapted on the training texts."""
    words = layers.TextVectorization(
        max_tokens=p.max_tokens, ngrams=2, output_mode="tf_idf", name="word_tfidf"
    )
    chars = layers.TextVectorization(
        max_tokens=p.max_tokens * CHAR_TOKENS_PER_WORD_TOKEN,
        standardize=standardize_chars,
        split=split_char_ngrams,
        output_mode="tf_idf",
        name="char_tfidf",
    )
    data = tf.data.Dataset.from_tensor_slices(tf.constant(list(train_texts), tf.string)).batch(1024)
    words.adapt(data)
    chars.adapt(data)
    return words, chars


def build_ngram(train_texts: Sequence[str], n_labels: int, p: ModelParams) -> keras.Model:
    """L2-normalised word and char TF-IDF -> dropout -> Dense(dense_units) -> dropout -> softmax."""
    words, chars = make_ngram_vectorizers(train_texts, p)
    inputs = keras.Input(shape=(), dtype="string", name="text")
    x = layers.Concatenate(name="tfidf")(
        [
            layers.UnitNormalization(name="word_l2")(words(inputs)),
            layers.UnitNormalization(name="char_l2")(chars(inputs)),
        ]
    )
    x = layers.Dropout(INPUT_DROPOUT, name="dropout_features")(x)
    x = layers.Dense(p.dense_units, activation="relu", name="dense")(x)
    x = layers.Dropout(p.dropout, name="dropout")(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="textcls_ngram")
