"""``python -m bench.e5_device_check VERSION_DIR``: an e5 model's texts/s on the GPU vs the CPU.

The prepared device check of issue 30 (texts/s at batch 1/32/256), for a machine with a GPU:

- the exported model's ``serving_default`` (bench.limit.SignatureRunner: what textcls serve
  calls), loaded under ``/GPU:0`` and under ``/CPU:0`` in the same process, at batch 1, 32
  and 256 on BANKING77's test texts, ``--reps`` rounds interleaved;
- the largest difference between the GPU's and the CPU's probabilities on 256 texts.

Writes one JSON file to ``--out`` (``$OUT`` on the device machine). Needs TensorFlow with CUDA
(``pip install "textcls[gpu]"``) and ``tensorflow_text``; the exported model needs nothing else.
It has not been run on a GPU yet: docs/results/speed.md says so beside its CPU rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import texts
from bench.limit import SignatureRunner

BATCHES = (1, 32, 256)


def _runner(version_dir: Path, device: str) -> SignatureRunner:
    import tensorflow as tf

    with tf.device(device):
        return SignatureRunner(version_dir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e5_device_check", description=__doc__)
    p.add_argument("version", type=Path, help="An exported e5 (or use+e5) model version folder.")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = p.parse_args(argv)
    import numpy as np
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print("no GPU visible to TensorFlow: nothing to check", file=sys.stderr)
        return 2
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    rows = texts.read_texts(texts.data_dir(args.data) / "test.csv")
    runners = {d: _runner(args.version, d) for d in ("/GPU:0", "/CPU:0")}
    rates: dict[str, dict[int, list[float]]] = {d: {b: [] for b in BATCHES} for d in runners}
    for rep in range(args.reps):
        for device, runner in runners.items():
            for b in BATCHES:
                with tf.device(device):
                    r = runner.measure(rows, b, args.seconds)
                rates[device][b].append(r.texts_per_s)
                print(f"rep {rep + 1} {device} batch {b}: {r.texts_per_s:,.1f} texts/s", flush=True)
    sample = rows[:256]
    probs = {d: np.asarray(r.predict(sample)) for d, r in runners.items()}
    result: dict[str, Any] = {
        "version": str(args.version),
        "gpu": [g.name for g in gpus],
        "gpu_details": tf.config.experimental.get_device_details(gpus[0]),
        "texts_per_s": {
            d: {b: statistics.median(v) for b, v in per.items()} for d, per in rates.items()
        },
        "max_abs_probability_difference": float(np.abs(probs["/GPU:0"] - probs["/CPU:0"]).max()),
        "runs": rates,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "e5_device_check.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result["texts_per_s"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
