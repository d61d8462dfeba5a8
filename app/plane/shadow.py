"""Shadow traffic: the version labelled ``shadow`` classifies every request off the request path.

After the answering version has ranked a request's texts, ``ShadowRunner.submit`` enqueues the
same texts on the shadow version's batcher (one enqueue on the event loop, no ``await``) and
returns; the answer goes out at once. When the shadow's batch is done, a callback on the loop
counts its predictions per version with role ``shadow``, compares its top labels with the
answer's (``textcls_shadow_agreed_total`` / ``textcls_shadow_compared_total``) and logs its
rows with ``role='shadow'``. Nothing a shadow does reaches a client: over
``TEXTCLS_SHADOW_MAX_QUEUE_TEXTS`` waiting texts, or when it fails, the texts are dropped and
counted in ``textcls_shadow_dropped_total``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from app.errors import ServiceError
from app.metrics import Metrics
from app.plane.batcher import BatchResult
from app.plane.loaded_model import LoadedModel
from app.plane.log_records import LogSink, log_records
from app.plane.ranking import RankedPrediction
from app.plane.routing import Serving

log = logging.getLogger(__name__)


class ShadowRunner:
    """Sends requests to a shadow version and records what it would have answered."""

    def __init__(
        self,
        metrics: Metrics | None,
        log_sink: LogSink | None,
        *,
        max_queue_texts: int,
        top_k: int,
        margin_setting: float | None = None,
    ) -> None:
        self.metrics = metrics
        self.log_sink = log_sink
        self.max_queue_texts = max_queue_texts
        self.top_k = top_k
        self.margin_setting = margin_setting
        self.dropped = 0
        self.compared = 0
        self.agreed = 0

    def submit(
        self,
        shadow: Serving,
        *,
        texts: list[str],
        answered: list[RankedPrediction],
        request_id: str,
        client: str | None,
        now: datetime,
    ) -> None:
        """Enqueue ``texts`` on ``shadow`` unless its queue is full; never raises."""
        batcher, model = shadow.batcher, shadow.model
        if batcher.depth + len(texts) > self.max_queue_texts:
            self._drop(model, len(texts), "queue_full")
            return
        started = time.perf_counter()
        try:
            rule = model.fallback_rule(None, None, self.margin_setting)
            future = batcher.submit(texts, (self.top_k, *rule), counted=False)
        except ServiceError:  # full (its own bound) or shutting down: never the client's problem
            self._drop(model, len(texts), "unavailable")
            return
        future.add_done_callback(
            lambda f: self._done(
                f,
                model,
                texts=texts,
                answered=answered,
                request_id=request_id,
                client=client,
                now=now,
                started=started,
            )
        )

    def _drop(self, model: LoadedModel, n: int, reason: str) -> None:
        self.dropped += n
        if self.metrics is not None:
            self.metrics.shadow_dropped.labels(model.name, str(model.version), reason).inc(n)

    def _done(
        self,
        future: asyncio.Future[BatchResult],
        model: LoadedModel,
        *,
        texts: list[str],
        answered: list[RankedPrediction],
        request_id: str,
        client: str | None,
        now: datetime,
        started: float,
    ) -> None:
        name, version = model.name, model.version
        if future.cancelled():
            self._drop(model, len(texts), "cancelled")
            return
        error = future.exception()
        if error is not None:
            log.warning("shadow %s v%s failed on a batch: %s", name, version, error)
            self._drop(model, len(texts), "failed")
            return
        result = future.result()
        predictions = result.predictions or []
        agreed = sum(p.label == a.label for p, a in zip(predictions, answered, strict=True))
        self.compared += len(predictions)
        self.agreed += agreed
        if self.metrics is not None:
            m, v = self.metrics, str(version)
            m.shadow_compared.labels(name, v).inc(len(predictions))
            if agreed:
                m.shadow_agreed.labels(name, v).inc(agreed)
            m.version_predictions.labels(name, v, "shadow").inc(len(predictions))
            fallbacks = sum(p.fallback for p in predictions)
            if fallbacks:
                m.version_fallbacks.labels(name, v, "shadow").inc(fallbacks)
        if self.log_sink is not None:
            latency_ms = (time.perf_counter() - started) * 1000
            self.log_sink(
                log_records(
                    texts,
                    predictions,
                    request_id=request_id,
                    created_at=now,
                    client=client,
                    model=name,
                    version=version,
                    latency_ms=latency_ms,
                    batch_size=result.batch_size,
                    role="shadow",
                )
            )
