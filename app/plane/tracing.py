"""OpenTelemetry traces: W3C ``traceparent`` in, OTLP/HTTP out, on when OTLP is configured.

Configured only by the standard variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns tracing on; the exporter, sampler and resource
read the rest (``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_TRACES_SAMPLER``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ...) themselves. Unset, ``Tracing.tracer`` is None: no provider,
no exporter thread, and every traced place pays one ``is None`` test.

The app owns its tracer provider (the global one is left alone), so two apps in one process
export on their own. FastAPI's own telemetry makes each HTTP request's server span with it;
the batcher, explainer, gRPC server and prediction-log writer add theirs as children.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from app.plane.loaded_model import LoadedModel

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME = "textcls"
MAX_LINKS = 128  # OpenTelemetry's default span link limit


def otlp_configured(environ: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for traces over OTLP."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


class Tracing:
    """The app's tracer (None when off) and its provider, started and stopped by the lifespan."""

    def __init__(self, provider: TracerProvider | None) -> None:
        self.provider = provider
        self.tracer: trace.Tracer | None = (
            provider.get_tracer("textcls") if provider is not None else None
        )

    @classmethod
    def from_environment(cls) -> Tracing:
        """On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces one) is set, else off."""
        environ = os.environ
        if not otlp_configured(environ):
            return cls(None)
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
        return cls(TracerProvider(resource=Resource.create(attributes)))

    def start(self) -> None:
        """Start exporting (a batching thread), if on."""
        if self.provider is None:
            return
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("tracing on: spans go to %s over OTLP/HTTP", _endpoint())

    def shutdown(self) -> None:
        """Export what is left and stop."""
        if self.provider is not None:
            self.provider.shutdown()


def _endpoint() -> str:
    for name in ENDPOINT_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return "?"


def rpc_span(
    tracer: trace.Tracer | None, name: str, metadata: Iterable[tuple[str, Any]]
) -> AbstractContextManager[Any]:
    """A current SERVER span of one gRPC call (``name``: service/method), a child of the
    caller's span when its ``metadata`` carries a W3C ``traceparent``; a null context when
    tracing is off."""
    if tracer is None:
        return nullcontext()
    service, _, method = name.rpartition("/")
    carrier = {str(k).lower(): v for k, v in metadata if isinstance(v, str)}
    return tracer.start_as_current_span(
        name,
        context=propagate.extract(carrier),
        kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
    )


def current_span_context() -> SpanContext | None:
    """The current span's context, if a request is being traced (sampled or not: its trace id
    still names the request in the prediction log)."""
    ctx = trace.get_current_span().get_span_context()
    return ctx if ctx.is_valid else None


def sampled_span_context() -> SpanContext | None:
    """The current span's context if its trace is sampled (kept): the spans of an unsampled
    trace would be dropped, so they are not made."""
    ctx = trace.get_current_span().get_span_context()
    return ctx if ctx.is_valid and ctx.trace_flags.sampled else None


def parent_context(span_context: SpanContext) -> Any:
    """An OpenTelemetry context whose current span is ``span_context`` (a parent to start from)."""
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def links_to(contexts: Iterable[SpanContext]) -> list[Link]:
    """Links to each distinct span, at most MAX_LINKS."""
    seen: dict[tuple[int, int], Link] = {}
    for ctx in contexts:
        key = (ctx.trace_id, ctx.span_id)
        if key not in seen:
            seen[key] = Link(ctx)
            if len(seen) == MAX_LINKS:
                break
    return list(seen.values())


class QueuedTexts(Protocol):
    """A batcher's queue item, as its spans see it."""

    texts: list[str]
    enqueued: float  # time.monotonic() when queued
    trace: SpanContext | None


def trace_batch(
    tracer: trace.Tracer,
    model: LoadedModel,
    batch: Sequence[QueuedTexts],
    *,
    started: float,
    elapsed: float,
) -> None:
    """A model call's spans, made after its answers are on their way: each traced request's
    wait in the batch queue, and the call itself, a child of the first traced request and
    linked to every request it served."""
    traced = [(item, item.trace) for item in batch if item.trace is not None]
    if not traced:
        return
    to_epoch_ns = time.time_ns() - time.monotonic_ns()
    started_ns = round(started * 1e9) + to_epoch_ns
    for item, ctx in traced:
        tracer.start_span(
            "batch queue",
            context=parent_context(ctx),
            start_time=round(item.enqueued * 1e9) + to_epoch_ns,
            attributes={"textcls.texts": len(item.texts)},
        ).end(end_time=started_ns)
    tracer.start_span(
        "model call",
        context=parent_context(traced[0][1]),
        links=links_to(ctx for _, ctx in traced),
        start_time=started_ns,
        attributes={
            "textcls.model": model.name,
            "textcls.version": model.version,
            "textcls.batch_size": sum(len(item.texts) for item in batch),
            "textcls.requests": len(batch),
        },
    ).end(end_time=started_ns + round(elapsed * 1e9))
