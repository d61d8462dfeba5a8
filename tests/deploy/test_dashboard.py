"""The Grafana dashboard: valid JSON; each query names a ``textcls_`` family /metrics exposes."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from tests.deploy.conftest import DEPLOY
from tests.s3_server import S3Server

DASHBOARD = DEPLOY / "grafana" / "textcls.json"

# The families fixed by the metrics issue (#5), with their Prometheus types.
FAMILIES = {
    "textcls_http_requests_total": "counter",
    "textcls_http_request_duration_seconds": "histogram",
    "textcls_inference_batch_size": "histogram",
    "textcls_inference_duration_seconds": "histogram",
    "textcls_queue_wait_seconds": "histogram",
    "textcls_queue_depth": "gauge",
    "textcls_predictions_total": "counter",
    "textcls_prediction_confidence": "histogram",
    "textcls_fallbacks_total": "counter",
    "textcls_model_info": "gauge",
    "textcls_model_reloads_total": "counter",
    "textcls_log_rows_written_total": "counter",
    "textcls_log_queue_depth": "gauge",
    "textcls_log_rows_spilled_total": "counter",
    "textcls_log_rows_replayed_total": "counter",
    "textcls_log_write_errors_total": "counter",
    "textcls_feedback_total": "counter",
    # The log's lifecycle: lost rows, sampling, retention.
    "textcls_log_rows_dropped_total": "counter",
    "textcls_log_rows_sampled_out_total": "counter",
    "textcls_log_rows_pruned_total": "counter",
    # The model lifecycle (issue 16): version labels, canary share, shadow.
    "textcls_model_label": "gauge",
    "textcls_canary_share": "gauge",
    "textcls_version_predictions_total": "counter",
    "textcls_version_fallbacks_total": "counter",
    "textcls_shadow_compared_total": "counter",
    "textcls_shadow_agreed_total": "counter",
    "textcls_shadow_dropped_total": "counter",
    # Drift of live traffic against the version's training reference.
    "textcls_drift": "gauge",
    # A fleet on an object store (issue 33): store health, versions fetched and skipped, cache.
    "textcls_store_up": "gauge",
    "textcls_store_errors_total": "counter",
    "textcls_store_versions_fetched_total": "counter",
    "textcls_store_versions_skipped_total": "counter",
    "textcls_cache_bytes": "gauge",
    "textcls_cache_evictions_total": "counter",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Grafana's macros and variables are not PromQL; give them values a query could have.
GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", []))


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, rows' nested panels included."""
    return [
        (panel.get("title", ""), target["expr"])
        for panel in walk_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def to_promql(expr: str) -> str:
    for macro, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(macro, value)
    return re.sub(r"\$\{?(\w+)\}?", r"\1", expr)


def metric_names(expr: str) -> set[str]:
    """The metric name of every vector selector in ``expr``, from a real PromQL parse."""
    names: set[str] = set()

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(to_promql(expr)), visit)
    return names


def family_of(metric: str) -> str | None:
    """The family a sample name belongs to (``x_bucket`` -> ``x`` for histograms), or None."""
    if metric in FAMILIES and FAMILIES[metric] != "histogram":
        return metric
    for suffix in HISTOGRAM_SUFFIXES:
        base = metric.removesuffix(suffix)
        if base != metric and FAMILIES.get(base) == "histogram":
            return base
    return None


def dashboard_families() -> set[str]:
    dashboard = load_dashboard()
    families = set()
    for _, expr in panel_queries(dashboard):
        families |= {f for f in map(family_of, metric_names(expr)) if f}
    return families


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "textcls"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in walk_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert len(panel_queries(dashboard)) >= 10


@pytest.mark.parametrize(
    ("title", "expr"), panel_queries(load_dashboard()), ids=lambda v: str(v)[:60]
)
def test_every_query_parses_and_names_only_textcls_families(title: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{title!r}: no metric in {expr!r}"
    unknown = {n for n in names if family_of(n) is None}
    assert not unknown, f"{title!r}: {sorted(unknown)} are not textcls families (issue 5)"


def test_histograms_are_queried_through_their_buckets_sum_or_count() -> None:
    for title, expr in panel_queries(load_dashboard()):
        for name in metric_names(expr):
            if FAMILIES.get(name) == "histogram":
                pytest.fail(f"{title!r}: histogram {name} used bare, not as _bucket/_sum/_count")


def test_quantiles_come_from_bucket_rates() -> None:
    quantile_queries = [
        (title, expr)
        for title, expr in panel_queries(load_dashboard())
        if "histogram_quantile" in expr
    ]
    assert quantile_queries, "the dashboard shows no latency quantiles"
    for title, expr in quantile_queries:
        assert re.search(r"rate\(\w+_bucket", expr), f"{title!r}: {expr!r}"
        assert re.search(r"by \((le\b|[^)]*\ble\b)", expr), f"{title!r}: no 'by (le)' in {expr!r}"


def test_dashboard_covers_every_family() -> None:
    missing = set(FAMILIES) - dashboard_families()
    assert not missing, f"the dashboard never shows {sorted(missing)}"


def test_template_variables_query_known_families() -> None:
    for variable in load_dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert match, f"variable {variable['name']}: unexpected query {query!r}"
        assert family_of(match.group(1)), f"variable {variable['name']}: {match.group(1)}"


def test_panels_use_the_dashboard_datasource_variable() -> None:
    for panel in walk_panels(load_dashboard()["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def wait_until_ready(client: Any, timeout_s: float = 60.0) -> None:
    """Models load in the background after start-up; /readyz says when one is warm."""
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, f"/readyz not 200 after {timeout_s}s"
        time.sleep(0.05)


def exposed_families(body: str) -> dict[str, str]:
    """``{family: type}`` from the ``# TYPE`` lines of a Prometheus text exposition."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, flags=re.M))


def test_metrics_endpoint_exposes_every_dashboard_family(
    tiny_model_repo: Path, tmp_path: Path, s3_env: S3Server
) -> None:
    """Served from an S3 repository (moto's server), as a fleet is: the store and cache
    families exist only there; every other family is the same as with a local folder."""
    from fastapi.testclient import TestClient

    from app.config import load_settings
    from app.main import create_app
    from app.plane.store.marker import publish_folder
    from app.plane.store.objects import open_store

    url = f"s3://{s3_env.new_bucket()}/models"
    publish_folder(open_store(url), tiny_model_repo / "example" / "1", "example/1")
    settings = load_settings(
        model_dir=url,
        cache_dir=tmp_path / "cache",
        database_url=f"sqlite:///{tmp_path / 'log.db'}",
        log_spill_path=tmp_path / "spill.jsonl",
        poll_interval_s=0,
        device="cpu",
    )
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client)
        response = client.post("/classify", json={"text": "my card was charged twice"})
        assert response.status_code == 200, response.text
        body = client.get("/metrics").text

    exposed = exposed_families(body)
    used = dashboard_families()
    missing = {f for f in used if f not in exposed}
    assert not missing, f"the dashboard queries families /metrics lacks: {sorted(missing)}"
    wrong_type = {f: exposed[f] for f in used if exposed[f] != FAMILIES[f]}
    assert not wrong_type, f"families with another type than issue 5 fixes: {wrong_type}"
