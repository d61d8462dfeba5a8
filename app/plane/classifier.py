"""The classification data plane: resolve the model, batch, rank, count, and log predictions.

Knows nothing of HTTP; routes call ``Classifier.classify`` and shape its result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from opentelemetry.trace import SpanContext

from app.config import Settings
from app.errors import InvalidInput
from app.plane.loaded_model import LoadedModel
from app.plane.log_records import LogSink, log_records
from app.plane.ranking import RankedPrediction
from app.plane.repository import ModelRepository
from app.plane.request_ids import new_request_id
from app.plane.routing import Serving
from app.plane.shadow import ShadowRunner
from app.plane.tracing import current_span_context


@dataclass(slots=True, kw_only=True)
class Classification:
    """The answer to one classify call, in input order."""

    request_id: str
    model: str
    version: int
    predictions: list[RankedPrediction]
    probabilities: np.ndarray | None = None  # float32 [n, n_labels], in the order of labels
    labels: Sequence[str] = ()  # the answering version's labels


class Classifier:
    """Validates texts against the limits and runs them through the batcher, which ranks them
    and counts them in the prediction metrics."""

    def __init__(
        self, settings: Settings, repository: ModelRepository, log_sink: LogSink | None = None
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.log_sink = log_sink
        self.shadows = ShadowRunner(
            repository.metrics,
            log_sink,
            max_queue_texts=settings.shadow_max_queue_texts,
            top_k=settings.default_top_k,
            margin_setting=settings.fallback_margin,
        )

    def check_texts(self, texts: Sequence[object], *, single: bool = False) -> list[str]:
        """The texts if each is a non-blank string within the limits, else InvalidInput.

        ``single``: the request sent one ``text``, so a problem names it, not ``text 0``.
        """
        s = self.settings
        if not texts:
            raise InvalidInput("'texts' must hold at least one text")
        if len(texts) > s.max_texts:
            raise InvalidInput(f"too many texts: {len(texts)} (at most {s.max_texts})")
        for i, text in enumerate(texts):
            name = "'text'" if single else f"text {i}"
            if not isinstance(text, str):
                raise InvalidInput(f"{name} is not a string")
            if len(text) > s.max_text_chars:
                raise InvalidInput(
                    f"{name} has {len(text)} characters (at most {s.max_text_chars})"
                )
            if not text.strip():
                raise InvalidInput(f"{name} is empty")
        return texts  # type: ignore[return-value]

    async def probabilities(
        self, texts: list[str], model: str | None, version: int | str | None
    ) -> tuple[str, int, np.ndarray]:
        """Raw probabilities (TF Serving's shape); texts must already be checked."""
        serving = self.repository.resolve(model, version)
        result = await serving.batcher.submit(texts)
        return serving.model.name, serving.model.version, result.probabilities

    async def classify(
        self,
        texts: list[str],
        *,
        model: str | None = None,
        version: int | str | None = None,
        top_k: int | None = None,
        threshold: float | None = None,
        margin: float | None = None,
        client: str | None = None,
        request_id: str | None = None,
        session: str | None = None,
    ) -> Classification:
        """Classify checked ``texts`` with the named (or default) model.

        ``version`` is a number or a label; without one, the model's traffic split picks it
        (sticky per ``session`` when given). The version labelled ``shadow`` then classifies
        the same texts off the request path. ``request_id`` keys the logged rows (and
        /feedback); a new one is made if not given.
        """
        started = time.perf_counter()
        traced = self.repository.versions.tracer is not None
        trace = current_span_context() if traced else None
        serving, shadow, _route = self.repository.route(model, version, session)
        loaded = serving.model
        # Ranked, and counted in the prediction metrics, by the batcher's thread, per batch.
        ranking = (
            top_k or self.settings.default_top_k,
            *loaded.fallback_rule(threshold, margin, self.settings.fallback_margin),
        )
        result = await serving.batcher.submit(texts, ranking)
        predictions = result.predictions
        assert predictions is not None
        request_id = request_id or new_request_id()
        self._record(
            loaded,
            shadow,
            texts,
            predictions=predictions,
            batch_size=result.batch_size,
            request_id=request_id,
            client=client,
            started=started,
            trace=trace,
        )
        return Classification(
            request_id=request_id,
            model=loaded.name,
            version=loaded.version,
            predictions=predictions,
            probabilities=result.probabilities,
            labels=loaded.labels,
        )

    def _record(
        self,
        loaded: LoadedModel,
        shadow: Serving | None,
        texts: list[str],
        *,
        predictions: list[RankedPrediction],
        batch_size: int,
        request_id: str,
        client: str | None,
        started: float,
        trace: SpanContext | None,
    ) -> None:
        """After an answer (the batcher has counted it): log its rows, and send its texts to
        the shadow version (if one is labelled)."""
        now = datetime.now(UTC)
        if self.log_sink is not None:
            latency_ms = (time.perf_counter() - started) * 1000
            self.log_sink(
                log_records(
                    texts,
                    predictions,
                    request_id=request_id,
                    created_at=now,
                    client=client,
                    model=loaded.name,
                    version=loaded.version,
                    latency_ms=latency_ms,
                    batch_size=batch_size,
                    trace=trace,
                )
            )
        if shadow is not None:
            self.shadows.submit(
                shadow,
                texts=texts,
                answered=predictions,
                request_id=request_id,
                client=client,
                now=now,
            )
