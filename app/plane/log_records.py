"""The prediction-log records of one model call: one per text, answered or shadow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from opentelemetry.trace import SpanContext

from app.plane.ranking import RankedPrediction
from app.predlog.records import PredictionRecord

# Where a model call's records go: the log writer's submit (never blocks), or None when off.
LogSink = Callable[[Sequence[PredictionRecord]], None]


def log_records(
    texts: list[str],
    predictions: list[RankedPrediction],
    *,
    request_id: str,
    created_at: datetime,
    client: str | None,
    model: str,
    version: int,
    latency_ms: float,
    batch_size: int,
    role: str = "primary",
    trace: SpanContext | None = None,
) -> list[PredictionRecord]:
    """One record per text, in input order (``index`` is the text's position); ``trace``, the
    request's span when it is traced (its span id kept only when sampled: the log write's span
    links to it then)."""
    trace_id = span_id = None
    if trace is not None:
        trace_id = format(trace.trace_id, "032x")
        if trace.trace_flags.sampled:
            span_id = format(trace.span_id, "016x")
    return [
        PredictionRecord(
            request_id=request_id,
            index=i,
            created_at=created_at,
            client=client,
            model=model,
            version=version,
            text=text,
            label=p.label,
            confidence=p.confidence,
            fallback=p.fallback,
            ranking=p.ranking,
            latency_ms=latency_ms,
            batch_size=batch_size,
            role=role,
            trace_id=trace_id,
            span_id=span_id,
        )
        for i, (text, p) in enumerate(zip(texts, predictions, strict=True))
    ]
