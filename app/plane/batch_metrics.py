"""One model version's batcher metrics: the handles labelled once, updated per batch.

Updated by the batcher's inference threads, never per request on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.metrics import Metrics
from app.plane.loaded_model import LoadedModel
from app.plane.ranking import RankedPrediction


class BatchMetrics:
    """Batch size, model-call time, queue wait and depth; answered predictions per label,
    their confidences and fallbacks; and per version with role primary (a shadow's texts are
    not counted here: ShadowRunner counts them as role shadow)."""

    def __init__(self, metrics: Metrics, model: LoadedModel) -> None:
        name, version = model.name, str(model.version)
        self._batch_size_h = metrics.inference_batch_size.labels(name)
        self._duration_h = metrics.inference_duration.labels(name, version)
        self._wait_h = metrics.queue_wait.labels(name)
        self._depth_g = metrics.queue_depth.labels(name)
        self._confidence_h = metrics.prediction_confidence.labels(name)
        self._fallbacks_c = metrics.fallbacks.labels(name)
        self._version_c = metrics.version_predictions.labels(name, version, "primary")
        self._version_fb_c = metrics.version_fallbacks.labels(name, version, "primary")
        self._by_label = {
            label: metrics.predictions.labels(name, version, label) for label in model.labels
        }

    def batch(self, *, texts: int, seconds: float, waits: Sequence[float], depth: int) -> None:
        """One model call: its size, duration, each item's queue wait, the queue left."""
        self._batch_size_h.observe(texts)
        self._duration_h.observe(seconds)
        for wait in waits:
            self._wait_h.observe(wait)
        self._depth_g.set(depth)

    def answered(self, predictions: list[RankedPrediction]) -> None:
        """Predictions that answer requests (ranked, not a shadow's)."""
        per_label: dict[str, int] = {}
        fallbacks = 0
        observe = self._confidence_h.observe
        for p in predictions:
            per_label[p.label] = per_label.get(p.label, 0) + 1
            observe(p.confidence)
            fallbacks += p.fallback
        for label, n in per_label.items():
            self._by_label[label].inc(n)
        self._version_c.inc(len(predictions))
        if fallbacks:
            self._fallbacks_c.inc(fallbacks)
            self._version_fb_c.inc(fallbacks)
