"""Traces end to end, exported over OTLP/HTTP to a real receiver on this machine: a request
carrying ``traceparent`` (HTTP header or gRPC metadata) gets request, queue and model-call
spans in that trace, /explain and the log write get theirs, and the prediction-log row keeps
the trace id. With OTEL_EXPORTER_OTLP_ENDPOINT unset nothing is traced or exported."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from app.main import create_app
from app.plane.tracing import Tracing, otlp_configured
from tests.app.live_service import make_settings
from tests.live_server import free_port, live_server
from tests.otlp_receiver import ReceivedSpan, otlp_receiver

SERVER = 2  # SpanKind.SPAN_KIND_SERVER in the OTLP protobuf
CLASSIFY_TRACE, CLASSIFY_PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
EXPLAIN_TRACE = "0af7651916cd43dd8448eb211c80319c"
GRPC_TRACE = "a3ce929d0e0e47364bf92f3577b34da6"
UNSAMPLED_TRACE = "5b8aa5a2d2c872e8321cf37308d69df2"


def _traceparent(trace_id: str, parent: str = "b7ad6b7169203331", flags: str = "01") -> str:
    return f"00-{trace_id}-{parent}-{flags}"


def _named(spans: list[ReceivedSpan], name: str, trace_id: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name and s.trace_id == trace_id]


def _in_trace(span: ReceivedSpan, trace_id: str, request: ReceivedSpan) -> bool:
    """``span`` is in the request's trace, or links to the request's span."""
    return span.trace_id == trace_id or (trace_id, request.span_id) in span.links


def _logged_trace_ids(db: Path, request_id: str) -> list[str | None]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            'SELECT trace_id FROM prediction_log WHERE request_id = ? ORDER BY "index"',
            (request_id,),
        ).fetchall()
    return [r[0] for r in rows]


def test_incoming_trace_context_gets_request_queue_model_and_log_spans(
    tiny_model_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export within 0.1 s
        grpc_port = free_port()
        settings = make_settings(tmp_path, tiny_model_repo, grpc_port=grpc_port)
        with live_server(create_app(settings)) as url:
            # A caller that does not sample: no span of its trace, but the log keeps its id.
            r = httpx.post(
                f"{url}/classify",
                json={"text": "where is my card"},
                headers={"traceparent": _traceparent(UNSAMPLED_TRACE, flags="00")},
            )
            unsampled_id = r.json()["request_id"]
            r = httpx.post(
                f"{url}/classify",
                json={"texts": ["where is my card", "cancel my order"]},
                headers={"traceparent": _traceparent(CLASSIFY_TRACE, CLASSIFY_PARENT)},
            )
            assert r.status_code == 200, r.text
            request_id = r.json()["request_id"]
            r = httpx.post(
                f"{url}/explain",
                json={"text": "where is my card"},
                headers={"traceparent": _traceparent(EXPLAIN_TRACE)},
            )
            assert r.status_code == 200, r.text
            text = grpcclient.InferInput("text", [1], "BYTES")
            text.set_data_from_numpy(np.array([b"refund please"], dtype=np.object_))
            with grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}") as triton:
                triton.infer("example", [text], headers={"traceparent": _traceparent(GRPC_TRACE)})

            def complete(spans: list[ReceivedSpan]) -> bool:
                return bool(
                    _named(spans, "prediction log write", CLASSIFY_TRACE)
                    and _named(spans, "explain", EXPLAIN_TRACE)
                    and _named(spans, "batch queue", GRPC_TRACE)
                )

            spans = receiver.wait_for(complete)
            # The rows are written (their write span is out): the review page finds them.
            review = httpx.get(
                f"{url}/review/queue", params={"trace_id": CLASSIFY_TRACE, "status": "all"}
            ).json()
            assert [i["trace_id"] for i in review["items"]] == [CLASSIFY_TRACE] * 2
            assert {i["request_id"] for i in review["items"]} == {request_id}

    (request,) = _named(spans, "POST /classify", CLASSIFY_TRACE)
    assert request.parent_span_id == CLASSIFY_PARENT and request.kind == SERVER
    assert request.service == "textcls"
    (queue,) = _named(spans, "batch queue", CLASSIFY_TRACE)
    assert queue.parent_span_id == request.span_id
    batches = [s for s in spans if s.name == "model call" and _in_trace(s, CLASSIFY_TRACE, request)]
    assert batches and batches[0].attributes["textcls.model"] == "example"
    assert (CLASSIFY_TRACE, request.span_id) in batches[0].links
    (write,) = _named(spans, "prediction log write", CLASSIFY_TRACE)
    assert (CLASSIFY_TRACE, request.span_id) in write.links

    (explain_request,) = _named(spans, "POST /explain", EXPLAIN_TRACE)
    (explain,) = _named(spans, "explain", EXPLAIN_TRACE)
    assert explain.parent_span_id == explain_request.span_id
    assert _named(spans, "batch queue", EXPLAIN_TRACE)[0].parent_span_id == explain.span_id

    (call,) = _named(spans, "inference.GRPCInferenceService/ModelInfer", GRPC_TRACE)
    assert call.kind == SERVER
    assert _named(spans, "batch queue", GRPC_TRACE)[0].parent_span_id == call.span_id

    assert _logged_trace_ids(tmp_path / "log.db", request_id) == [CLASSIFY_TRACE] * 2
    assert not [s for s in spans if s.trace_id == UNSAMPLED_TRACE]
    assert _logged_trace_ids(tmp_path / "log.db", unsampled_id) == [UNSAMPLED_TRACE]


def test_without_an_otlp_endpoint_nothing_is_traced_or_exported(
    tiny_model_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    app = create_app(make_settings(tmp_path, tiny_model_repo))
    assert app.state.tracing.tracer is None
    with live_server(app) as url:
        r = httpx.post(
            f"{url}/classify",
            json={"text": "where is my card"},
            headers={"traceparent": _traceparent(CLASSIFY_TRACE)},
        )
        assert r.status_code == 200, r.text
        exporters = [t.name for t in threading.enumerate() if "Otel" in t.name]
        assert exporters == []
    assert _logged_trace_ids(tmp_path / "log.db", r.json()["request_id"]) == [None]


def test_the_standard_variables_turn_tracing_on_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert otlp_configured(endpoint)
    assert otlp_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not otlp_configured({})
    assert not otlp_configured({**endpoint, "OTEL_SDK_DISABLED": "true"})
    assert not otlp_configured({**endpoint, "OTEL_TRACES_EXPORTER": "none"})
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert Tracing.from_environment().tracer is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert Tracing.from_environment().provider.resource.attributes["service.name"] == "textcls"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "classifier-eu")
    named = Tracing.from_environment()
    assert named.provider is not None
    assert named.provider.resource.attributes["service.name"] == "classifier-eu"
    named.shutdown()
