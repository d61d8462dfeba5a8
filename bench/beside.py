"""An n-gram model served beside a busy expensive model (e5): does it keep its texts/s?

One ``textcls serve`` holds both models. Per rep, each model's single texts at 64 connections
(wrk) are measured alone (the other idle), then the n-gram model's again while a second wrk
keeps 64 connections of single texts on the expensive model. Two servers run the same models:
``cheap first`` with the measured plans (app.plane.plan), and ``one class`` with the expensive
model forced to the cheap plan (``TEXTCLS_MODEL_BATCHING``: the batching before per-model
plans), reps interleaved so that machine noise hits both.
"""

from __future__ import annotations

import json
import statistics
import threading
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.servers import RunningServer, ServerSpec, stop_all

CONNECTIONS = 64


def _bodies(work: Path, model: str, texts: list[str]) -> Path:
    return loadgen.write_bodies(
        work / f"single-{model}.jsonl", [{"text": t, "model": model} for t in texts]
    )


def _measure(server: RunningServer, bodies: dict[str, Path], duration_s: float) -> dict[str, float]:
    """Each model alone, then the cheap one beside the busy expensive one; texts/s of each."""
    url, pid = server.classify_url, server.pid
    dear = loadgen.run_wrk(url, bodies["expensive"], CONNECTIONS, duration_s, 1, pid)
    alone = loadgen.run_wrk(url, bodies["cheap"], CONNECTIONS, duration_s, 1, pid)
    busy: dict[str, loadgen.LoadResult] = {}

    def load_expensive() -> None:
        # Longer than the n-gram run on both ends, so the n-gram run sees it busy throughout.
        busy["r"] = loadgen.run_wrk(url, bodies["expensive"], CONNECTIONS, duration_s + 4, 1, pid)

    thread = threading.Thread(target=load_expensive)
    thread.start()
    threading.Event().wait(2.0)  # the expensive model's queue fills first
    beside = loadgen.run_wrk(url, bodies["cheap"], CONNECTIONS, duration_s, 1, pid)
    thread.join()
    return {
        "expensive_alone_texts_per_s": dear.texts_per_s,
        "expensive_alone_p99_ms": dear.wrk.latency_us["p99"] / 1000,
        "expensive_alone_server_cpu_ms_per_text": dear.server_cpu_s
        * 1000
        / max(dear.wrk.ok_requests, 1),
        "cheap_alone_texts_per_s": alone.texts_per_s,
        "cheap_beside_texts_per_s": beside.texts_per_s,
        "cheap_beside_p99_ms": beside.wrk.latency_us["p99"] / 1000,
        "expensive_busy_texts_per_s": busy["r"].texts_per_s,
        "errors": float(sum(r.wrk.errors for r in (dear, alone, beside, busy["r"]))),
    }


def beside_rows(
    specs: dict[str, ServerSpec], models: dict[str, str], texts: list[str], work: Path, **run: Any
) -> dict[str, Any]:
    """Per variant in ``specs`` (one server each, holding both models): medians over ``reps``
    of the cheap model alone and beside the busy expensive one, and their ratio.

    ``models``: {"cheap": name, "expensive": name}; ``run``: reps, duration_s.
    """
    bodies = {role: _bodies(work, name, texts) for role, name in models.items()}
    servers = {key: RunningServer(spec, work) for key, spec in specs.items()}
    runs: dict[str, list[dict[str, float]]] = {key: [] for key in specs}
    try:
        for server in servers.values():
            server.start()
            loadgen.run_wrk(server.classify_url, bodies["expensive"], CONNECTIONS, 3.0, 1, None)
        for rep in range(run["reps"]):
            for key, server in servers.items():
                row = _measure(server, bodies, run["duration_s"])
                runs[key].append(row)
                print(f"beside rep {rep + 1} {key}: {json.dumps(row)}", flush=True)
    finally:
        stop_all(list(servers.values()))
    summary = {}
    for key, rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        med["cheap_kept"] = med["cheap_beside_texts_per_s"] / med["cheap_alone_texts_per_s"]
        summary[key] = med
    return {"models": models, "summary": summary, "runs": runs}
