"""Serving speed of exported models: texts/s of the ``serving_default`` signature, in-process."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from training import artifact


def texts_per_second(
    version_dir: Path, texts: list[str], batch_size: int = 256, seconds: float = 10.0
) -> float:
    """Call the signature on batches of ``batch_size`` texts for ~``seconds``; texts/s."""
    import tensorflow as tf

    artifact.import_op_libraries(artifact.read_metadata(version_dir))
    serve = tf.saved_model.load(str(version_dir)).signatures[artifact.SIGNATURE_KEY]
    texts = texts * (batch_size // len(texts) + 1)  # at least one full batch
    starts = range(0, len(texts) - batch_size + 1, batch_size)
    batches = [tf.constant(texts[i : i + batch_size]) for i in starts][:4]
    serve(**{artifact.INPUT_KEY: batches[0]})  # trace and warm up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for batch in batches:
            serve(**{artifact.INPUT_KEY: batch})
            done += int(batch.shape[0])
    return done / (time.perf_counter() - started)


def main(argv: list[str]) -> None:
    """``python -m training.throughput TEXTS.csv VERSION_DIR...``: one line per model."""
    from training.oos import load_oos_texts  # reads the text column of a file, any labels aside

    texts = load_oos_texts(argv[0])[: 256 * 4]
    for version_dir in argv[1:]:
        meta = artifact.read_metadata(Path(version_dir))
        rate = texts_per_second(Path(version_dir), texts)
        print(f"{meta.name} v{meta.version} ({meta.arch}): {rate:.0f} texts/s at batch 256")


if __name__ == "__main__":
    main(sys.argv[1:])
