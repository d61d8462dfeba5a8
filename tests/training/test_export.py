"""The exported artifact: layout, metadata, and a plain tf.saved_model.load serving it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training import artifact


def test_tiny_repo_has_version_one(tiny_model_repo: Path) -> None:
    version_dir = tiny_model_repo / "example" / "1"
    assert artifact.versions(tiny_model_repo / "example") == [1]
    meta = artifact.read_metadata(version_dir)
    assert meta.name == "example" and meta.version == 1
    assert len(meta.labels) == 14
    assert meta.data.rows["test"] == 154
    for f in ("metrics.json", "confusion_matrix.png", "pr_curves.png", "report.md"):
        assert (version_dir / "report" / f).is_file()
    assert not [p for p in (tiny_model_repo / "example").iterdir() if p.name.startswith(".tmp-")]


def test_plain_saved_model_load_serves_strings(tiny_model_repo: Path) -> None:
    version_dir = tiny_model_repo / "example" / "1"
    fn = tf.saved_model.load(str(version_dir)).signatures[artifact.SIGNATURE_KEY]
    texts = ["where is my parcel", "I lost my card", "", "x" * 3000]
    out = fn(**{artifact.INPUT_KEY: tf.constant(texts)})[artifact.OUTPUT_KEY].numpy()
    labels = artifact.read_metadata(version_dir).labels
    assert out.dtype == np.float32
    assert out.shape == (len(texts), len(labels))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    metrics = json.loads((version_dir / "report" / "metrics.json").read_text())
    assert metrics["test"]["rows"] == 154


@pytest.mark.parametrize("batch", [1, 7])
def test_signature_accepts_any_batch_size(tiny_model_repo: Path, batch: int) -> None:
    fn = tf.saved_model.load(str(tiny_model_repo / "example" / "1")).signatures["serving_default"]
    out = fn(text=tf.constant(["refund please"] * batch))["probabilities"]
    assert out.shape[0] == batch
