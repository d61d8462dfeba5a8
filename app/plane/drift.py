"""Drift of one served version: a sliding window of its live predictions, compared with the
reference statistics its trainer stored (training.reference).

Updated by the batcher's inference threads after each batch, beside the prediction metrics,
never on the event loop. The window keeps running counts, so adding a text and dropping the
oldest costs a few operations, and the distances read the counts only.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from prometheus_client import Gauge

from app.metrics import Metrics, name
from app.plane.ranking import RankedPrediction
from training.reference import (
    ALERT_LEVELS,
    SIGNALS,
    Reference,
    confidence_bins,
    distances,
    text_coverage,
)


@dataclass(frozen=True, slots=True)
class DriftGauges:
    """``textcls_drift{model,version,signal}`` and ``textcls_drift_window_texts{model,version}``
    on one Metrics registry."""

    drift: Gauge
    window_texts: Gauge


_GAUGES: weakref.WeakKeyDictionary[Metrics, DriftGauges] = weakref.WeakKeyDictionary()
_GAUGES_LOCK = threading.Lock()


def drift_gauges(metrics: Metrics) -> DriftGauges:
    """The drift families of ``metrics``' registry, created with its first window."""
    with _GAUGES_LOCK:
        found = _GAUGES.get(metrics)
        if found is None:
            r = metrics.registry
            found = _GAUGES[metrics] = DriftGauges(
                drift=Gauge(
                    name("drift"),
                    "Distance of a version's latest answered texts from its held-out "
                    "reference, by signal: labels and confidence (PSI), fallback_rate (rise), "
                    "coverage (drop).",
                    ["model", "version", "signal"],
                    registry=r,
                    multiprocess_mode="livemax",
                ),
                window_texts=Gauge(
                    name("drift_window_texts"),
                    "Answered texts in the version's drift window.",
                    ["model", "version"],
                    registry=r,
                    multiprocess_mode="livemax",
                ),
            )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftReading:
    """The window's distances (None until it holds ``min_texts``) and its size."""

    texts: int
    window: int
    min_texts: int
    signals: dict[str, float] | None


class DriftWindow:
    """The last ``size`` answered texts of one version: top label, confidence bin, fallback,
    token coverage; gauges ``textcls_drift{model,version,signal}`` once ``min_texts`` are in."""

    def __init__(
        self,
        reference: Reference,
        *,
        model: str,
        version: int,
        size: int,
        min_texts: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.reference = reference
        self.size = size
        self.min_texts = min(min_texts, size)
        self._index = {label: i for i, label in enumerate(reference.label_shares)}
        self._vocabulary = frozenset(reference.vocabulary)
        self._edges = reference.confidence_edges
        n_bins = len(self._edges) - 1
        # The ring: each slot's label index (-1: a label the reference lacks), bin, fallback
        # and coverage (NaN: a text without tokens).
        self._label = np.full(size, -1, dtype=np.int32)
        self._bin = np.zeros(size, dtype=np.int32)
        self._fallback = np.zeros(size, dtype=bool)
        self._coverage = np.full(size, np.nan, dtype=np.float64)
        self._label_counts = np.zeros(len(self._index) + 1, dtype=np.int64)  # last: unknown
        self._bin_counts = np.zeros(n_bins, dtype=np.int64)
        self._fallbacks = 0
        self._coverage_sum = 0.0
        self._covered = 0
        self._pos = 0
        self._n = 0
        self._lock = threading.Lock()
        self._gauges, self._texts_gauge = None, None
        self._families = drift_gauges(metrics) if metrics is not None else None
        if self._families is not None:
            families = self._families
            self._gauges = {s: families.drift.labels(model, str(version), s) for s in SIGNALS}
            self._texts_gauge = families.window_texts.labels(model, str(version))

    def observe(self, texts: Sequence[str], predictions: Sequence[RankedPrediction]) -> None:
        """Add answered texts (dropping the oldest past ``size``), then refresh the gauges."""
        unknown = len(self._index)
        labels = [self._index.get(p.label, unknown) for p in predictions]
        bins = confidence_bins(np.fromiter((p.confidence for p in predictions), np.float64))
        coverage = [text_coverage(t, self._vocabulary) for t in texts]
        with self._lock:
            for label, b, p, c in zip(labels, bins.tolist(), predictions, coverage, strict=True):
                self._add(label, b, fallback=p.fallback, coverage=c)
            reading = self._reading()
        self._publish(reading)

    def _add(self, label: int, b: int, *, fallback: bool, coverage: float | None) -> None:
        i = self._pos
        if self._n == self.size:
            old_label = self._label[i]
            self._label_counts[old_label] -= 1
            self._bin_counts[self._bin[i]] -= 1
            self._fallbacks -= int(self._fallback[i])
            old_cov = self._coverage[i]
            if not np.isnan(old_cov):
                self._coverage_sum -= float(old_cov)
                self._covered -= 1
        else:
            self._n += 1
        self._label[i], self._bin[i], self._fallback[i] = label, b, fallback
        self._coverage[i] = np.nan if coverage is None else coverage
        self._label_counts[label] += 1
        self._bin_counts[b] += 1
        self._fallbacks += int(fallback)
        if coverage is not None:
            self._coverage_sum += coverage
            self._covered += 1
        self._pos = (i + 1) % self.size

    def _reading(self) -> DriftReading:
        n = self._n
        signals = None
        if n >= self.min_texts:
            # A label the reference lacks counts in the total but in no reference share.
            shares = self._label_counts[:-1] / n
            coverage = self._coverage_sum / self._covered if self._covered else 1.0
            signals = distances(
                self.reference,
                label_shares=shares,
                confidence_shares=self._bin_counts / n,
                fallback_rate=self._fallbacks / n,
                coverage=coverage,
            )
        return DriftReading(texts=n, window=self.size, min_texts=self.min_texts, signals=signals)

    def reading(self) -> DriftReading:
        """The window's distances now."""
        with self._lock:
            return self._reading()

    def _publish(self, reading: DriftReading) -> None:
        if self._texts_gauge is not None:
            self._texts_gauge.set(reading.texts)
        if self._gauges is not None and reading.signals is not None:
            for signal, value in reading.signals.items():
                self._gauges[signal].set(value)

    def retire(self, model: str, version: int) -> None:
        """Drop the version's drift series (it no longer serves)."""
        if self._families is None:
            return
        for signal in SIGNALS:
            try:
                self._families.drift.remove(model, str(version), signal)
            except KeyError:
                pass
        try:
            self._families.window_texts.remove(model, str(version))
        except KeyError:
            pass


def describe(reading: DriftReading) -> dict[str, object]:
    """A reading as /models/{name} shows it: each signal's value, alert level and state."""
    return {
        "window_texts": reading.texts,
        "window": reading.window,
        "min_texts": reading.min_texts,
        "signals": None
        if reading.signals is None
        else {
            s: {
                "value": round(v, 4),
                "alert_level": ALERT_LEVELS[s],
                "alerting": v > ALERT_LEVELS[s],
            }
            for s, v in reading.signals.items()
        },
    }
