"""Use a saved artifact: find a version folder, load its signature, score labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training import artifact
from training.artifact import ArtifactError, Metadata
from training.data import DataError, Dataset


def resolve_version_dir(path: Path) -> Path:
    """``models/NAME/VERSION`` as is; ``models/NAME`` -> its newest version."""
    if (path / artifact.SAVED_MODEL_FILE).is_file():
        return path
    found = artifact.versions(path)
    if not found:
        raise ArtifactError(f"{path}: neither a model version folder nor a folder of versions")
    return path / str(found[-1])


class SavedClassifier:
    """A version folder loaded with plain ``tf.saved_model.load`` (what the service does too)."""

    def __init__(self, version_dir: Path) -> None:
        import tensorflow as tf

        self.path = version_dir
        self.metadata: Metadata = artifact.read_metadata(version_dir)
        artifact.import_op_libraries(self.metadata)
        self._loaded = tf.saved_model.load(str(version_dir))
        self._fn = self._loaded.signatures[artifact.SIGNATURE_KEY]

    @property
    def labels(self) -> list[str]:
        return self.metadata.labels

    def predict(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """Probabilities [len(texts), n_labels]."""
        import tensorflow as tf

        out = [
            self._fn(**{artifact.INPUT_KEY: tf.constant(texts[i : i + batch_size])})[
                artifact.OUTPUT_KEY
            ].numpy()
            for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def rank(self, text: str, top_k: int) -> list[tuple[str, float]]:
        probs = self.predict([text])[0]
        order = np.argsort(-probs, kind="stable")[:top_k]
        return [(self.labels[k], float(probs[k])) for k in order]


def score_dataset(
    model: SavedClassifier, ds: Dataset
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Metrics of ``model`` on ``ds`` (report/metrics.json's shape), label indices, probabilities.

    Raises DataError (naming lines) when the file has labels the model does not know.
    """
    from training.evaluate import apply_threshold, compute_metrics

    index = {lab: k for k, lab in enumerate(model.labels)}
    unknown = [
        (line, lab) for lab, line in zip(ds.labels, ds.lines, strict=True) if lab not in index
    ]
    if unknown:
        raise DataError(
            ds.path,
            [(line, f"label {lab!r} is not one of the model's labels") for line, lab in unknown],
        )
    y = np.array([index[lab] for lab in ds.labels], dtype=np.int64)
    probs = model.predict(ds.texts)
    metrics = {"test": compute_metrics(y, probs, model.labels)}
    fb = model.metadata.fallback
    at = apply_threshold(probs.max(axis=1), probs.argmax(axis=1) == y, fb.threshold)
    metrics["fallback"] = {
        "threshold": fb.threshold,
        "target_precision": fb.target_precision,
        "test_precision": at.precision,
        "test_fallback_rate": at.fallback_rate,
    }
    metrics["model"] = {"name": model.metadata.name, "version": model.metadata.version}
    metrics["data"] = {"file": str(ds.path), "sha256": ds.sha256, "rows": len(ds)}
    return metrics, y, probs


def predict_probabilities(model: Any, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Probabilities [n, n_labels] from a Keras model or a serving signature."""
    import tensorflow as tf

    out = []
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(texts[start : start + batch_size], dtype=tf.string)
        result = model(batch, training=False) if hasattr(model, "fit") else model(text=batch)
        if isinstance(result, dict):
            result = result[artifact.OUTPUT_KEY]
        out.append(np.asarray(result, dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
