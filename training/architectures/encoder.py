"""encoder: frozen multilingual sentence encoders (USE v3, e5-small) beside n-gram TF-IDF.

The pretrained encoder knows paraphrases ("my card never came" ~ "the card has not arrived")
that 10-30 examples per label cannot teach; the n-gram features keep the exact words and
characters that separate close intents. Each feature block has its own linear member, and the
members' distributions are combined as a product of experts (training.architectures.experts;
docs/results/accuracy.md has the alternatives: one softmax over every block, embeddings alone,
an MLP head, the encoder fine-tuned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from training.architectures.experts import LinearMember, MemberLosses, ProductOfExperts
from training.architectures.ngram import (
    INPUT_DROPOUT,
    SparseTfidfDense,
    inverse_document_frequency,
    make_ngram_vectorizers,
)
from training.params import ModelParams

FEATURE_DROPOUT = 0.1


def build_head(
    train_texts: Sequence[str],
    n_labels: int,
    p: ModelParams,
    text: keras.KerasTensor,
    blocks: dict[str, keras.KerasTensor],
) -> Any:
    """Probabilities: a product of experts (training.architectures.experts) of one linear
    member per encoder's features (``blocks``, by encoder name: a LinearMember unless
    --fine-tune moves the features; training.stages.linear_members) and one on the n-grams."""
    logits = []
    for name, features in blocks.items():
        x = layers.Dropout(FEATURE_DROPOUT, name=f"{name}_dropout")(features)
        if p.fine_tune:  # the features move with the steps: the member learns beside them
            logits.append(layers.Dense(n_labels, name=f"{name}_logits")(x))
        else:
            logits.append(LinearMember(n_labels, name=f"{name}_logits")(x))
    words, chars = make_ngram_vectorizers(train_texts, p)
    idf = [inverse_document_frequency(v, train_texts) for v in (words, chars)]
    ngrams = SparseTfidfDense(p.dense_units, INPUT_DROPOUT, idf, name="dense")(
        [words(text), chars(text)]
    )
    ngrams = layers.Dropout(p.dropout, name="dropout")(ngrams)
    logits.append(layers.Dense(n_labels, name="ngram_logits")(ngrams))
    return ProductOfExperts(name="probabilities")(logits)


class EncoderStack(keras.layers.Layer):
    """String [batch] -> the named encoders' outputs side by side [batch, sum of widths]
    (``names`` in order): what the head's ``encoder_pooled`` input holds."""

    def __init__(self, encoders: dict[str, keras.layers.Layer], **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.names = tuple(encoders)
        # One attribute per encoder, not a list: the export's walk for resources (the
        # SentencePiece models) reaches layers held by attributes only.
        for name, part in encoders.items():
            setattr(self, f"part_{name}", part)
        self.widths = tuple(int(e.compute_output_shape((None,))[1]) for e in self.parts)

    @property
    def parts(self) -> list[keras.layers.Layer]:
        return [getattr(self, f"part_{name}") for name in self.names]

    def renew(self) -> None:
        """New SentencePiece resources (``tf.random.set_seed`` drops them): each part's."""
        for part in self.parts:
            part.renew()

    def call(self, text: tf.Tensor) -> tf.Tensor:
        outputs = [part(text) for part in self.parts]
        return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=1)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], sum(self.widths))


def make_stack(encoders: Sequence[str], e5_prefix: str = "query") -> EncoderStack:
    """The EncoderStack of ``encoders`` (names in training.params.ENCODERS): USE multilingual
    v3's pooled vectors (the head runs its DAN layers), e5's L2-normalised embeddings."""
    parts: dict[str, keras.layers.Layer] = {}
    for name in encoders:
        if name == "use":
            from training.encoder.layers import UseMultilingualEncoder

            parts[name] = UseMultilingualEncoder(returns="pooled", name="use_multilingual")
        elif name == "e5":
            from training.encoder.e5 import E5Encoder

            prefix: Any = f"{e5_prefix}: "
            parts[name] = E5Encoder(prefix, name="e5")
        else:
            raise ValueError(f"unknown encoder {name!r}; known: use, e5")
    return EncoderStack(parts, name="encoders")


class _Rows:
    """One encoder's cached vectors by text."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.blocks: list[np.ndarray] = []
        self.matrix: np.ndarray | None = None

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        first = {t: i for i, t in reversed(list(enumerate(texts))) if t not in self.rows}
        self.blocks.append(np.asarray(vectors, np.float32)[list(first.values())])
        base = len(self.rows)
        self.rows.update((t, base + n) for n, t in enumerate(first))
        self.matrix = None

    def lookup(self, texts: Sequence[str], width: int) -> np.ndarray:
        if self.matrix is None:
            self.matrix = (
                np.concatenate(self.blocks) if self.blocks else np.zeros((0, width), np.float32)
            )
        return self.matrix[np.array([self.rows[t] for t in texts], dtype=np.int64)]


class EncoderFeatures:
    """The frozen encoders' features of every distinct text a training run sees, each text
    encoded once per encoder: the fold models, the refit and the trainer's own predictions
    (held-out rows after every epoch, val, test, out-of-scope) all read them from here. The
    encoders are frozen and deterministic, and they are ~98% of the compute of a step.

    One per training run (``training.train.train`` makes it and drops it at the end), never
    inside a model: the exported ``serving_default`` runs ``encoder`` (an EncoderStack)
    itself on its input. ``key``: the (encoders, e5 prefix) it was made for.
    """

    def __init__(
        self, encoder: EncoderStack | None = None, batch_size: int = 256, e5_prefix: str = "query"
    ) -> None:
        self.encoder = encoder or make_stack(("use",), e5_prefix)  # the cheapest stack
        self.key = (self.encoder.names, e5_prefix)
        # Built by an eager call (on no text): SentencePiece's resource, made on first use
        # inside a tf.function, would live in that function's graph only.
        self.encoder(tf.constant([], tf.string))
        self.batch_size = batch_size
        self.encoded = 0  # distinct texts run through an encoder so far
        self._cache = {name: _Rows() for name in self.encoder.names}
        self._encode: dict[str, Any] = {}
        self.renew()

    def renew(self) -> None:
        """Give the encoders new SentencePiece resources; ``build_encoder`` calls this, since
        ``fit`` seeds TensorFlow (dropping the old resource) before every build
        (``SentencePieceTokens.renew``)."""
        self.encoder.renew()
        spec = [tf.TensorSpec([None], tf.string)]
        self._encode = {
            name: tf.function(part, input_signature=spec)
            for name, part in zip(self.encoder.names, self.encoder.parts, strict=True)
        }

    def preload(self, name: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Take encoder ``name``'s vectors of ``texts`` as computed elsewhere (a benchmark's
        cache on disk): those texts are not encoded by it again."""
        self._cache[name].add(list(texts), vectors)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), sum of widths]: cached rows, the texts not seen yet encoded now."""
        blocks = []
        new: set[str] = set()
        for name, width in zip(self.encoder.names, self.encoder.widths, strict=True):
            cache = self._cache[name]
            missing = [t for t in dict.fromkeys(texts) if t not in cache.rows]
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                cache.add(batch, np.asarray(self._encode[name](tf.constant(batch, tf.string))))
            new.update(missing)
            blocks.append(cache.lookup(texts, width))
        self.encoded += len(new)
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)


def features_for(params: ModelParams | None = None) -> EncoderFeatures:
    """A fresh EncoderFeatures for ``params`` (its --encoders and --e5-prefix)."""
    p = params or ModelParams()
    return EncoderFeatures(make_stack(p.encoders, p.e5_prefix), e5_prefix=p.e5_prefix)


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
    """String -> [frozen encoders' features (--encoders) | sparse TF-IDF -> Dense ReLU] ->
    softmax.

    ``features``: the run's shared cache (its encoders become this model's); a fresh one
    (fresh encoders) without, or when it was made for other encoders.
    """
    from training.encoder.e5_weights import require_encoders

    require_encoders(p.encoders)
    if features is None or features.key != (tuple(p.encoders), p.e5_prefix):
        features = features_for(p)
    else:
        features.renew()
    stack = features.encoder
    text = keras.Input(shape=(), dtype="string", name="text")
    pooled = keras.Input(shape=(sum(stack.widths),), name="encoder_pooled")
    train = features(train_texts)
    head = MemberLosses(
        [text, pooled],
        build_head(train_texts, n_labels, p, text, _encoder_features(stack, pooled, p, train)),
        name="head",
    )
    model = EncoderClassifier(stack, head, name="textcls_encoder")
    model(keras.Input(shape=(), dtype="string"))  # build, symbolically: no text is encoded
    return model


def _encoder_features(
    stack: EncoderStack, pooled: Any, p: ModelParams, train_pooled: np.ndarray
) -> dict[str, Any]:
    """The head's features of each encoder's block of ``pooled``, by encoder name: USE's
    pooled vectors through its DAN layers (trainable with --fine-tune), e5's embedding as it is;
    each centred on its mean over the training rows (``train_pooled``: their ``pooled``) and
    divided by its root-mean-square deviation there (one number per block, which keeps the
    block's geometry).

    Sentence embeddings share a large common direction (e5's vectors of unrelated texts are at
    cosine 0.7-0.9) and differ in scale (per value, e5's deviations are ~0.02, USE's DAN
    features' ~0.04): centred and scaled to unit deviation, each linear member learns at the
    same pace from the shared learning rate, and none needs many more epochs than the n-grams'.
    """
    from training.encoder.layers import DanFeatures

    out, start = {}, 0
    for name, part, width in zip(stack.names, stack.parts, stack.widths, strict=True):
        block = pooled if len(stack.names) == 1 else pooled[:, start : start + width]
        rows = train_pooled[:, start : start + width]
        if name == "use":
            dan = DanFeatures(part.dan_weights(), part.eps, trainable=p.fine_tune, name="dan")
            block, rows = dan(block), np.asarray(dan(rows))
        mean = rows.mean(axis=0) if len(rows) else np.zeros(rows.shape[1], np.float32)
        spread = float(np.square(rows - mean).mean()) if len(rows) > 1 else 1.0
        variance = np.full_like(mean, max(spread, 1e-12))
        centre = layers.Normalization(mean=mean, variance=variance, name=f"{name}_centre")
        out[name] = centre(block)
        start += width
    return out
