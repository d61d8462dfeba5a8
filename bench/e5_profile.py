"""``python -m bench.e5_profile``: where an e5 batch's CPU goes, in process.

The e5 encoder (``training.encoder.e5.E5Encoder``, "query: ") as one traced ``tf.function`` on
the first BANKING77 test texts: wall and CPU milliseconds per text at each ``--batches`` size
(the tokenizer alone beside it), then ``--calls`` calls at ``--profile-batch`` under the
TensorFlow profiler, summed by op type (MatMul, Transpose, Erfc ...) over the executor's
threads. An op's time there is its wall time on an inter-op thread (its intra-op work
included), so the shares are what to compare, not the absolute milliseconds.
"""

from __future__ import annotations

import argparse
import collections
import csv
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import texts

EXECUTOR_EVENT = "ExecutorState::Process"  # the executor's own span around each op


def _per_text_ms(fn: Any, batch: Any, n: int, reps: int) -> tuple[float, float]:
    """(wall, CPU) milliseconds per text of ``fn(batch)``, warm, over ``reps`` calls."""
    fn(batch)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn(batch)
    return (
        (time.perf_counter() - wall) * 1000 / reps / n,
        (time.process_time() - cpu) * 1000 / reps / n,
    )


def op_type_ms(logdir: Path) -> collections.Counter[str]:
    """Milliseconds per op type in the profile under ``logdir`` (executor threads only)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals: collections.Counter[str] = collections.Counter()
    for path in logdir.rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        for plane in space.planes:
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" in name and name != EXECUTOR_EVENT:
                        totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9
    return totals


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e5_profile", description=__doc__)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--profile-batch", type=int, default=32)
    p.add_argument("--calls", type=int, default=5)
    args = p.parse_args(argv)
    import tensorflow as tf

    from training.encoder.e5 import E5Encoder

    with open(texts.data_dir(args.data) / "test.csv", newline="", encoding="utf-8") as f:
        rows = [r["text"] for r in csv.DictReader(f)]
    enc = E5Encoder()
    spec = [tf.TensorSpec([None], tf.string)]
    full = tf.function(lambda t: enc(t), input_signature=spec)
    tokens = tf.function(lambda t: enc.tokens(t).flat_values, input_signature=spec)
    for n in (int(b) for b in args.batches.split(",")):
        batch, reps = tf.constant(rows[:n]), max(3, 256 // n)
        wall, cpu = _per_text_ms(full, batch, n, reps)
        t_wall, t_cpu = _per_text_ms(tokens, batch, n, reps)
        per_text = int(tf.size(enc.tokens(batch).flat_values)) / n
        print(f"batch {n}: {per_text:.1f} tokens/text; e5 {wall:.2f} ms/text wall, {cpu:.2f} CPU; "
              f"tokenizer {t_wall:.3f} wall, {t_cpu:.3f} CPU")  # fmt: skip
    batch = tf.constant(rows[: args.profile_batch])
    full(batch)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(args.calls):
            full(batch)
        tf.profiler.experimental.stop()
        totals = op_type_ms(Path(logdir))
    whole = sum(totals.values())
    print(f"op time at batch {args.profile_batch}, per call: {whole / args.calls:.1f} ms")
    for op, ms in totals.most_common(20):
        print(f"  {op:28s} {ms / args.calls:8.2f} ms {100 * ms / whole:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
