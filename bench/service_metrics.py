"""What textcls's own /metrics says about a run: batch sizes, model-call time, queue wait."""

from __future__ import annotations

import urllib.error
import urllib.request

PREFIX = "textcls_"
# histogram -> the name its mean gets in a row
HISTOGRAMS = {
    "textcls_inference_batch_size": "mean_batch_texts",
    "textcls_inference_duration_seconds": "mean_model_call_ms",
    "textcls_queue_wait_seconds": "mean_queue_wait_ms",
}


def parse_totals(text: str) -> dict[str, float]:
    """Prometheus text format -> value per metric name, summed over label sets."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(PREFIX):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            totals[name] = totals.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return totals


def scrape(base_url: str, timeout_s: float = 5.0) -> dict[str, float]:
    """Totals from ``base_url``/metrics; empty when the server has no such endpoint."""
    try:
        with urllib.request.urlopen(base_url + "/metrics", timeout=timeout_s) as response:
            return parse_totals(response.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return {}


def window_stats(
    before: dict[str, float], after: dict[str, float], wall_s: float
) -> dict[str, float]:
    """Means over the window between two scrapes (ms for durations), and model calls/s."""
    out: dict[str, float] = {}
    for hist, label in HISTOGRAMS.items():
        count = after.get(hist + "_count", 0.0) - before.get(hist + "_count", 0.0)
        total = after.get(hist + "_sum", 0.0) - before.get(hist + "_sum", 0.0)
        if count > 0:
            out[label] = total / count * (1000.0 if label.endswith("_ms") else 1.0)
    calls = after.get("textcls_inference_batch_size_count", 0.0) - before.get(
        "textcls_inference_batch_size_count", 0.0
    )
    if calls > 0 and wall_s > 0:
        out["model_calls_per_s"] = calls / wall_s
    return out
