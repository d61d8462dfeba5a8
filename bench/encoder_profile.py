"""``python -m bench.encoder_profile``: where the encoder's time goes, each part timed alone.

Tokenization, the embedding gather (uint8 rows dequantized per call, against a float32 table
dequantized once), the token-level CNN, and the whole encoder, on batches of 256 BANKING77 test
texts, two rounds. Needs the [encoder] extra.
"""

from __future__ import annotations

import time

import tensorflow as tf

from bench import texts
from training.encoder.layers import UseMultilingualEncoder

BATCH = 256
BATCHES = 10


def main() -> None:
    enc = UseMultilingualEncoder(returns="features")
    enc.build()
    rows = texts.read_texts(texts.data_dir() / "test.csv")[: BATCH * BATCHES]
    batches = [tf.constant(rows[i : i + BATCH]) for i in range(0, len(rows), BATCH)]
    sig = [tf.TensorSpec([None], tf.string)]
    table_f32 = tf.Variable(
        tf.cast(enc.w_table, tf.float32) * enc.w_scale[:, None] + enc.w_lo[:, None]
    )

    def gather_uint8(t: tf.Tensor) -> tf.Tensor:
        ids = enc.tokens(t).flat_values
        rows = tf.cast(tf.gather(enc.w_table, ids), tf.float32)
        return rows * tf.gather(enc.w_scale, ids)[:, None] + tf.gather(enc.w_lo, ids)[:, None]

    parts = {
        "tokenize (SentencePiece op)": lambda t: enc.tokens(t).flat_values,
        "tokenize + gather, uint8 rows dequantized": gather_uint8,
        "tokenize + gather, float32 table": lambda t: tf.gather(
            table_f32, enc.tokens(t).flat_values
        ),
        "tokenize + token CNN + pooling": enc.pooled,
        "whole encoder (features)": enc,
    }
    fns = {k: tf.function(f, input_signature=sig) for k, f in parts.items()}
    pieces = sum(int(fns["tokenize (SentencePiece op)"](b).shape[0]) for b in batches)
    print(f"{pieces / len(rows):.1f} pieces per text")
    for rnd in range(2):
        for name, fn in fns.items():
            fn(batches[0])
            started = time.perf_counter()
            for b in batches:
                fn(b)
            wall = time.perf_counter() - started
            per_batch = wall / len(batches) * 1000
            rate = len(rows) / wall
            print(f"round {rnd + 1} {name}: {rate:,.0f} texts/s, {per_batch:.1f} ms/batch")


if __name__ == "__main__":
    main()
