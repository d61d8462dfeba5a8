"""One model version in memory: load the SavedModel, warm it up, predict a batch."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.plane.device import Device
from training.artifact import (
    INPUT_KEY,
    OUTPUT_KEY,
    SIGNATURE_KEY,
    ArtifactError,
    Metadata,
    import_op_libraries,
    read_metadata,
)

log = logging.getLogger(__name__)

WARMUP_TEXTS = ["warm up", "a longer warm-up text so every layer sees a real input", ""]


class LoadError(Exception):
    """A version folder could not be loaded or did not answer its warm-up batch."""


class LoadedModel:
    """A SavedModel version with its metadata; ``ready`` once a real batch went through."""

    def __init__(self, name: str, version: int, path: Path, *, device: Device) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.device = device
        self.ready = False
        self.metadata: Metadata | None = None
        self.labels: list[str] = []
        self.loaded_at: float | None = None
        self.ms_per_text = 0.0  # one text's share of a warm full batch, timed at warm-up
        self._module: Any = None
        self._fn: Any = None

    @property
    def threshold(self) -> float:
        assert self.metadata is not None
        return self.metadata.fallback.threshold

    @property
    def margin(self) -> float:
        """The near-tie margin chosen at training (0.0 for a model trained without one)."""
        assert self.metadata is not None
        return self.metadata.fallback.margin

    def fallback_rule(
        self, threshold: float | None, margin: float | None, margin_setting: float | None
    ) -> tuple[float, float]:
        """(threshold, margin) of the fallback: the request's, else (margin only) the
        setting's, else this model's own, chosen at training."""
        if margin is None:
            margin = self.margin if margin_setting is None else margin_setting
        return (self.threshold if threshold is None else threshold), margin

    def load(self, warmup_batch_size: int = 8) -> None:
        """Read metadata, load the SavedModel on the device, then warm it up; LoadError if not."""
        import tensorflow as tf

        try:
            self.metadata = read_metadata(self.path)
            import_op_libraries(self.metadata)
        except ArtifactError as exc:
            raise LoadError(str(exc)) from exc
        self.labels = list(self.metadata.labels)
        try:
            with tf.device(self.device.tf_name):
                module = tf.saved_model.load(str(self.path))
            fn = module.signatures[SIGNATURE_KEY]
        except (OSError, ValueError, KeyError, tf.errors.OpError) as exc:
            raise LoadError(f"{self.path}: cannot load the SavedModel: {exc}") from exc
        self._module, self._fn = module, fn
        self._warm_up(warmup_batch_size)
        self.loaded_at = time.time()
        self.ready = True

    def _warm_up(self, batch_size: int) -> None:
        import tensorflow as tf

        # Both a single text and a full batch, so the first real requests pay no set-up cost;
        # the full batch again, warm, is what one text costs this model (app.plane.plan).
        texts = (WARMUP_TEXTS * batch_size)[: max(batch_size, 1)]
        try:
            for batch in (texts[:1], texts, texts):
                started = time.perf_counter()
                probs = self.predict(batch)
                self.ms_per_text = (time.perf_counter() - started) * 1000 / len(batch)
                if probs.shape != (len(batch), len(self.labels)):
                    raise LoadError(
                        f"{self.path}: output shape {probs.shape} does not match "
                        f"{len(batch)} texts x {len(self.labels)} labels in metadata"
                    )
        except (tf.errors.OpError, KeyError, TypeError, ValueError) as exc:
            raise LoadError(f"{self.path}: warm-up batch failed: {exc}") from exc

    def predict(self, texts: list[str]) -> np.ndarray:
        """Probabilities, float32 [len(texts), n_labels]; called from one thread at a time."""
        import tensorflow as tf

        with tf.device(self.device.tf_name):
            out = self._fn(**{INPUT_KEY: tf.constant(texts, dtype=tf.string)})
        return np.asarray(out[OUTPUT_KEY].numpy(), dtype=np.float32)

    def release(self) -> None:
        """Destroy the model's TF resources, then drop the TF objects.

        Call it only once nothing predicts with this model any more (the repository closes
        the batcher first). The explicit destroy matters: TensorFlow does not free a restored
        SavedModel's lookup tables when their Python objects go, so without it every reload
        keeps the old version's vocabularies and memory grows with each reload
        (``python -m bench.reload_memory``; docs/results/speed.md).
        """
        self.ready = False
        if self._fn is not None:
            destroyed = destroy_resources(self._fn)
            log.debug("%s v%s: destroyed %d TF resources", self.name, self.version, destroyed)
        self._fn = None
        self._module = None
        # No gc.collect() here: the repository's swap ends with app.plane.heap.settle, which
        # unfreezes and collects once (a collection here could not reach frozen objects).


def destroy_resources(fn: Any) -> int:
    """Destroy every resource (lookup table, variable) a concrete function captured.

    A variable's own deleter later finds its resource gone, which it ignores
    (``ignore_lookup_error``), as does this for a resource already destroyed.
    """
    import tensorflow as tf

    destroyed = 0
    for tensor in fn.captured_inputs:
        if tensor.dtype == tf.resource:
            tf.raw_ops.DestroyResourceOp(resource=tensor, ignore_lookup_error=True)
            destroyed += 1
    return destroyed
