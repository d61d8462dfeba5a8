"""/metrics after known traffic: exact counters and histogram counts, route templates only."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.metrics import Metrics
from tests.app.conftest import make_settings, wait_ready

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by name and labels."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


@pytest.fixture(scope="module")
def scraped(tiny_model_repo: Path) -> tuple[Samples, str]:
    """Send known traffic to a fresh app, then scrape it once."""
    with TestClient(create_app(make_settings(tiny_model_repo))) as c:
        wait_ready(c)
        for text in ("refund please", "lost card", "hello"):  # 3 single texts, all fallback
            assert c.post("/classify", json={"text": text, "threshold": 1.0}).status_code == 200
        batch = {"texts": ["a", "b", "c", "d"], "threshold": 0.0, "margin": 0.0}  # no fallback
        assert c.post("/classify", json=batch).status_code == 200
        assert c.post("/classify", json={}).status_code == 422
        assert c.post("/classify", json={"text": " "}).status_code == 422
        assert c.post("/classify", json={"text": "a", "model": "nope"}).status_code == 404
        assert c.post("/v1/models/example:predict", json={"instances": ["x"]}).status_code == 200
        assert c.get("/models/example").status_code == 200
        assert c.get("/models/nope").status_code == 404
        assert c.get("/no/such/path").status_code == 404
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        c.get("/metrics")
        r = c.get("/metrics")
        assert r.headers["content-type"].startswith("text/plain")
        return parse(r.text), r.text


def test_http_requests_by_route_template_method_and_status(scraped) -> None:
    s, _ = scraped
    name = "textcls_http_requests_total"
    assert value(s, name, route="/classify", method="POST", status="200") == 4
    assert value(s, name, route="/classify", method="POST", status="422") == 2
    assert value(s, name, route="/classify", method="POST", status="404") == 1
    route = "/v1/models/{name}:predict"
    assert value(s, name, route=route, method="POST", status="200") == 1
    assert value(s, name, route="/models/{name}", method="GET", status="200") == 1
    assert value(s, name, route="/models/{name}", method="GET", status="404") == 1
    assert value(s, name, route="<unmatched>", method="GET", status="404") == 1
    assert total(s, name) == 11  # nothing else: probes and /metrics are left out
    duration = "textcls_http_request_duration_seconds_count"
    assert value(s, duration, route="/classify") == 7
    assert total(s, duration) == 11


def test_probes_metrics_and_raw_paths_are_not_labels(scraped) -> None:
    _, text = scraped
    for absent in ('route="/healthz"', 'route="/readyz"', 'route="/metrics"', "/models/example"):
        assert absent not in text


def test_prediction_families(scraped) -> None:
    s, _ = scraped
    assert total(s, "textcls_predictions_total", model="example", version="1") == 7
    assert total(s, "textcls_predictions_total") == 7  # TF Serving's predict is not classified
    assert value(s, "textcls_fallbacks_total", model="example") == 3
    assert value(s, "textcls_prediction_confidence_count", model="example") == 7


def test_batching_families(scraped) -> None:
    s, _ = scraped
    # Sequential requests: one model call each (4 classify + 1 predict), 8 texts in all.
    assert value(s, "textcls_inference_batch_size_count", model="example") == 5
    assert value(s, "textcls_inference_batch_size_sum", model="example") == 8
    assert value(s, "textcls_inference_duration_seconds_count", model="example", version="1") == 5
    assert value(s, "textcls_queue_wait_seconds_count", model="example") == 5
    assert value(s, "textcls_queue_depth", model="example") == 0


def test_model_families(scraped) -> None:
    s, _ = scraped
    assert value(s, "textcls_model_info", model="example", version="1", device="cpu") == 1
    assert value(s, "textcls_model_reloads_total", model="example", result="success") == 1


def test_log_and_feedback_families_exist_and_the_process_collector_runs(scraped) -> None:
    s, text = scraped
    # Prediction logging is off in this app, so the writer's counters stay at zero.
    assert value(s, "textcls_log_rows_written_total") == 0
    for family in (
        "textcls_log_queue_depth",
        "textcls_log_rows_spilled_total",
        "textcls_log_rows_replayed_total",
        "textcls_log_write_errors_total",
        "# TYPE textcls_feedback_total counter",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert family in text


def test_openmetrics_when_the_scraper_asks(tiny_model_repo: Path) -> None:
    with TestClient(create_app(make_settings(tiny_model_repo, poll_interval_s=0))) as c:
        r = c.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.fallbacks.labels("m").inc()
    assert "textcls_fallbacks_total{" not in b.render(None)[0].decode()
    assert a.registry is not b.registry
    assert 'textcls_fallbacks_total{model="m"} 1.0' in a.render(None)[0].decode()


def test_prediction_log_and_feedback_counters(tiny_model_repo: Path, tmp_path: Path) -> None:
    settings = make_settings(
        tiny_model_repo,
        log_predictions=True,
        database_url=f"sqlite:///{tmp_path / 'log.db'}",
        log_spill_path=tmp_path / "spill.jsonl",
    )
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        body = c.post("/classify", json={"texts": ["refund please", "I lost my card"]}).json()
        rid = body["request_id"]
        right = body["predictions"][0]["label"]
        labels = c.get("/models/example").json()["classes"]
        wrong = next(lbl for lbl in labels if lbl != body["predictions"][1]["label"])
        for index, label in ((0, right), (1, wrong)):
            r = c.post("/feedback", json={"request_id": rid, "index": index, "label": label})
            assert r.status_code in (200, 201), r.text
        r = c.post("/feedback", json={"request_id": "nope", "index": 0, "label": right})
        assert r.status_code == 404
        s = parse(c.get("/metrics").text)
    assert value(s, "textcls_log_rows_written_total") == 2
    assert value(s, "textcls_log_queue_depth") == 0
    assert value(s, "textcls_log_write_errors_total") == 0
    assert value(s, "textcls_feedback_total", model="example", correct="true") == 1
    assert value(s, "textcls_feedback_total", model="example", correct="false") == 1
    assert (
        value(s, "textcls_http_requests_total", route="/feedback", method="POST", status="404") == 1
    )


def test_requests_refused_before_routing_keep_their_route_template(tiny_model_repo: Path) -> None:
    settings = make_settings(tiny_model_repo, max_body_bytes=1024)
    with TestClient(create_app(settings)) as c:
        big = {"text": "x" * 2000}
        assert c.post("/classify", json=big).status_code == 413
        assert (
            c.post("/v1/models/example:predict", json={"instances": ["x" * 2000]}).status_code
            == 413
        )
        assert c.get("/classify").status_code == 405
        s = parse(c.get("/metrics").text)
    name = "textcls_http_requests_total"
    assert value(s, name, route="/classify", method="POST", status="413") == 1
    route = "/v1/models/{name}:predict"
    assert value(s, name, route=route, method="POST", status="413") == 1
    assert value(s, name, route="/classify", method="GET", status="405") == 1
