"""The span of one prediction-log INSERT, in the traces of the requests whose rows it writes."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, TraceFlags, Tracer

from app.predlog.records import PredictionRecord

MAX_LINKS = 128  # OpenTelemetry's default span link limit


def write_span(
    tracer: Tracer | None, records: Sequence[PredictionRecord]
) -> AbstractContextManager[Any]:
    """A span around writing ``records``: a child of the first traced request's span, linked
    to every traced request among them; a null context when none is traced (or tracing is off)."""
    if tracer is None:
        return nullcontext()
    spans: dict[tuple[str, str], SpanContext] = {}
    for r in records:
        if r.trace_id and r.span_id and (r.trace_id, r.span_id) not in spans:
            spans[(r.trace_id, r.span_id)] = SpanContext(
                int(r.trace_id, 16),
                int(r.span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            if len(spans) == MAX_LINKS:
                break
    if not spans:
        return nullcontext()
    contexts = list(spans.values())
    return tracer.start_as_current_span(
        "prediction log write",
        context=trace.set_span_in_context(NonRecordingSpan(contexts[0])),
        links=[Link(c) for c in contexts],
        attributes={"textcls.rows": len(records)},
    )
