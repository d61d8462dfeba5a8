"""Prometheus metrics: every ``textcls_`` family on a registry owned by one app instance."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.openmetrics import exposition as openmetrics

PREFIX = "textcls"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Serving latencies are milliseconds; the default buckets start at 5 ms and say little here.
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


def name(s: str) -> str:
    """A family's full name: ``textcls_`` and ``s``."""
    return f"{PREFIX}_{s}"


def multiprocess_dir() -> str | None:
    """The multiprocess directory when several workers share metrics, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """All families, created on this instance's own registry (never import-time globals).

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before prometheus_client is
    imported, as ``textcls serve --workers N`` does) values live in files shared by the
    workers and ``render`` sums them with a ``MultiProcessCollector``.
    """

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if not self.multiprocess:
            # The process collector reads /proc for this pid only; in multiprocess mode it
            # would report one arbitrary worker, so prometheus_client leaves it out there.
            ProcessCollector(registry=r)
        self._add_http_and_inference(r)
        self._add_predictions(r)
        self._add_models(r)
        self._add_versions(r)
        self._add_prediction_log(r)

    def _add_http_and_inference(self, r: CollectorRegistry) -> None:
        self.http_requests = Counter(
            name("http_requests"),
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_request_duration = Histogram(
            name("http_request_duration_seconds"),
            "Time to answer an HTTP request.",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.grpc_requests = Counter(
            name("grpc_requests"),
            "gRPC calls answered, by method and status code.",
            ["method", "code"],
            registry=r,
        )
        self.grpc_request_duration = Histogram(
            name("grpc_request_duration_seconds"),
            "Time to answer a gRPC call.",
            ["method"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.inference_batch_size = Histogram(
            name("inference_batch_size"),
            "Texts in each model call.",
            ["model"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.inference_duration = Histogram(
            name("inference_duration_seconds"),
            "Time of each model call (one batch).",
            ["model", "version"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            name("queue_wait_seconds"),
            "Time a request's texts waited for their batch.",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            name("queue_depth"),
            "Texts waiting in the model's batch queue.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )

    def _add_predictions(self, r: CollectorRegistry) -> None:
        self.predictions = Counter(
            name("predictions"),
            "Texts classified, by the top label.",
            ["model", "version", "label"],
            registry=r,
        )
        self.prediction_confidence = Histogram(
            name("prediction_confidence"),
            "Confidence of the top label.",
            ["model"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            name("fallbacks"),
            "Predictions handed to a person (low or ambiguous confidence).",
            ["model"],
            registry=r,
        )

    def _add_models(self, r: CollectorRegistry) -> None:
        """What each process serves and how it routes a model's traffic."""
        self.model_info = Gauge(
            name("model_info"),
            "1 for each model version being served, with its device.",
            ["model", "version", "device"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_label = Gauge(
            name("model_label"),
            "1 for each label -> version of a model as this process routes it, else 0.",
            ["model", "label", "version"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._label_series: set[tuple[str, str, int]] = set()
        self.canary_share = Gauge(
            name("canary_share"),
            "Share of a model's traffic (naming no version) sent to its canary version.",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def _add_versions(self, r: CollectorRegistry) -> None:
        """Per version: predictions and fallbacks by role, a shadow's comparisons and drops,
        and attempts to load it."""
        self.version_predictions = Counter(
            name("version_predictions"),
            "Texts classified per version and role (primary: answered; shadow: not).",
            ["model", "version", "role"],
            registry=r,
        )
        self.version_fallbacks = Counter(
            name("version_fallbacks"),
            "Predictions under the fallback rule, per version and role.",
            ["model", "version", "role"],
            registry=r,
        )
        self.shadow_compared = Counter(
            name("shadow_compared"),
            "Texts a shadow version classified beside the answering version.",
            ["model", "version"],
            registry=r,
        )
        self.shadow_agreed = Counter(
            name("shadow_agreed"),
            "Of those, texts where the shadow's top label matched the answer's.",
            ["model", "version"],
            registry=r,
        )
        self.shadow_dropped = Counter(
            name("shadow_dropped"),
            "Texts not shadowed because the shadow's queue was full (or it failed).",
            ["model", "version", "reason"],
            registry=r,
        )
        self.model_reloads = Counter(
            name("model_reloads"),
            "Attempts to load a model version, by result (success|failure).",
            ["model", "result"],
            registry=r,
        )

    def _add_prediction_log(self, r: CollectorRegistry) -> None:
        # Incremented by the prediction log writer, which is handed this object.
        self.log_rows_written = Counter(
            name("log_rows_written"), "Prediction log rows written to the database.", registry=r
        )
        self.log_queue_depth = Gauge(
            name("log_queue_depth"),
            "Prediction log rows waiting to be written.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.log_rows_spilled = Counter(
            name("log_rows_spilled"),
            "Rows spilled to the local file while the database failed.",
            registry=r,
        )
        self.log_rows_replayed = Counter(
            name("log_rows_replayed"), "Spilled rows written to the database later.", registry=r
        )
        self.log_write_errors = Counter(
            name("log_write_errors"), "Failed attempts to write prediction log rows.", registry=r
        )
        self.log_rows_pruned = Counter(
            name("log_rows_pruned"), "Rows changed by retention, by action.", ["action"], registry=r
        )
        self.log_rows_sampled_out = Counter(
            name("log_rows_sampled_out"), "Confident answers left out by sampling.", registry=r
        )
        self.log_rows_dropped = Counter(
            name("log_rows_dropped"),
            "Rows lost, by reason: neither the database nor the spill file took them.",
            ["reason"],
            registry=r,
        )
        self.feedback = Counter(
            name("feedback"),
            "Feedback received, by model and whether the prediction was right.",
            ["model", "correct"],
            registry=r,
        )

        # /explain: explanations are not predictions, so they have their own families.
        self.explanations = Counter(
            name("explanations"),
            "Texts explained by /explain, by model.",
            ["model"],
            registry=r,
        )
        self.explain_tokens = Histogram(
            name("explain_tokens"),
            "Tokens weighed per explained text (one model row each, plus the text itself).",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )

    def set_serving_state(self, model: str, labels: dict[str, int], canary_share: float) -> None:
        """The model's labels (1 per label -> version) and canary share, as routed here."""
        for key in [k for k in self._label_series if k[0] == model]:
            if labels.get(key[1]) != key[2]:
                self._label_series.discard(key)
                self.model_label.labels(*map(str, key)).set(0)
        for label, version in labels.items():
            self._label_series.add((model, label, version))
            self.model_label.labels(model, label, str(version)).set(1)
        self.canary_share.labels(model).set(canary_share)

    def set_model_served(self, model: str, version: int, device: str) -> None:
        self.model_info.labels(model, str(version), device).set(1)

    def set_model_retired(self, model: str, version: int, device: str) -> None:
        if self.multiprocess:
            # Multiprocess gauges live in per-worker files that remove() cannot reach.
            self.model_info.labels(model, str(version), device).set(0)
        else:
            try:
                self.model_info.remove(model, str(version), device)
            except KeyError:
                pass

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition body and its content type (OpenMetrics when ``accept`` asks)."""
        registry = self.registry
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        if accept and "application/openmetrics-text" in accept:
            return openmetrics.generate_latest(registry), openmetrics.CONTENT_TYPE_LATEST
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """In multiprocess mode, drop this worker's live gauges (its pid is going away)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())
