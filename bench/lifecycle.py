"""What the model lifecycle costs ``textcls serve``: a 10% canary, and a shadow, against no labels.

Three servers run side by side over three copies of one model folder holding the same model
as versions 1 and 2 (same weights, so only the routing and the extra model work differ):

- ``none``:   no serving.json (the newest version answers everything);
- ``canary``: stable 1, canary 2, canary share 0.1;
- ``shadow``: stable 1, shadow 2 (every request is classified twice; the shadow's answers are
  counted and dropped, never returned).

wrk loads them in turn with single-text requests, interleaved over ``--reps`` rounds so
background load hits every variant alike; the medians of texts/s, p99 latency and server CPU
per request are compared with ``none``. Targets: canary texts/s >= 0.95 of none;
shadow primary p99 <= 1.5x none. The prediction log is off in all three, so the figures are
the routing and model work alone.

    python -m bench.lifecycle [--model-dir DIR --name NAME] [--duration 8] [--reps 3]

Without ``--model-dir`` the bundled example is trained once (``textcls train`` defaults) into
``bench/.models-lifecycle``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from app.plane import serving_state as ss
from bench import loadgen
from bench.servers import REPO_ROOT, RunningServer, ServerSpec
from training.artifact import read_metadata, versions, write_metadata
from training.data import EXAMPLE_TEST

VARIANTS = ("none", "canary", "shadow")
STATES = {
    "none": None,
    "canary": ss.ServingState({"stable": 1, "canary": 2}, 0.1),
    "shadow": ss.ServingState({"stable": 1, "shadow": 2}),
}
DEFAULT_DIR = REPO_ROOT / "bench" / ".models-lifecycle"


def ensure_example(model_dir: Path) -> Path:
    found = versions(model_dir / "example")
    if not found:
        argv = [sys.executable, "-m", "app.cli", "train", "--model-dir", str(model_dir), "--quiet"]
        subprocess.run(argv, cwd=REPO_ROOT, check=True)
        found = versions(model_dir / "example")
    return model_dir / "example" / str(found[-1])


def model_folder(source: Path, dest: Path, name: str, state: ss.ServingState | None) -> Path:
    """``dest/name/1`` and ``dest/name/2``: copies of one version; the variant's state."""
    for version in (1, 2):
        target = dest / name / str(version)
        shutil.copytree(source, target)
        meta = read_metadata(source)
        meta.version = version
        write_metadata(target, meta)
    if state is not None:
        ss.write_state(dest / name, state)
    return dest


def _spec(key: str, model_dir: Path) -> ServerSpec:
    argv = [
        sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", "{port}",
        "--model-dir", str(model_dir), "--log-level", "warning",
    ]  # fmt: skip
    env = {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TEXTCLS_POLL_INTERVAL_S": "0",
        "TEXTCLS_LOG_PREDICTIONS": "false",
        "TEXTCLS_API_KEYS": "",
    }
    return ServerSpec(key, f"textcls serve, {key}", argv, env)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__)
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--name", default="example")
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "lifecycle.json")
    args = p.parse_args(argv)

    if args.model_dir is None:
        source = ensure_example(DEFAULT_DIR)
    else:
        found = versions(args.model_dir / args.name)
        source = args.model_dir / args.name / str(found[-1])
    with open(EXAMPLE_TEST, newline="", encoding="utf-8") as f:
        bodies = [{"text": row["text"]} for row in csv.DictReader(f)]
    results: dict[str, dict[str, list[float]]] = {
        v: {"texts_per_s": [], "p99_ms": [], "p50_ms": [], "cpu_ms": [], "errors": []}
        for v in VARIANTS
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        body_file = loadgen.write_bodies(work / "bodies.jsonl", bodies)
        servers = {}
        for v in VARIANTS:
            folder = model_folder(source, work / v, args.name, STATES[v])
            servers[v] = stack.enter_context(RunningServer(_spec(v, folder), work))
            print(f"started {v} on {servers[v].base_url}", flush=True)
        rounds = loadgen.Rounds(args.connections, args.warmup, args.duration, args.reps)
        for rep, v, r in loadgen.run_rounds(servers, body_file, rounds):
            if rep == 0:
                continue
            row = results[v]
            row["texts_per_s"].append(r.texts_per_s)
            row["p99_ms"].append(r.wrk.latency_us["p99"] / 1000)
            row["p50_ms"].append(r.wrk.latency_us["p50"] / 1000)
            row["cpu_ms"].append(r.server_cpu_ms_per_request)
            row["errors"].append(r.wrk.errors)
            print(
                f"rep {rep} {v:<7} {r.texts_per_s:8.1f} texts/s  p50 "
                f"{row['p50_ms'][-1]:6.1f} ms  p99 {row['p99_ms'][-1]:6.1f} ms  "
                f"{row['cpu_ms'][-1]:5.2f} server CPU ms/request  errors {r.wrk.errors}",
                flush=True,
            )
        shadow_metrics = _shadow_counts(servers["shadow"].base_url)
    median = {v: {k: statistics.median(x) for k, x in results[v].items()} for v in VARIANTS}
    none = median["none"]
    ratios = {
        "canary_texts_per_s": median["canary"]["texts_per_s"] / none["texts_per_s"],
        "shadow_texts_per_s": median["shadow"]["texts_per_s"] / none["texts_per_s"],
        "canary_p99": median["canary"]["p99_ms"] / none["p99_ms"],
        "shadow_p99": median["shadow"]["p99_ms"] / none["p99_ms"],
        "shadow_cpu_per_request": median["shadow"]["cpu_ms"] / none["cpu_ms"],
    }
    targets = {
        "canary_texts_per_s >= 0.95": ratios["canary_texts_per_s"] >= 0.95,
        "shadow_p99 <= 1.5": ratios["shadow_p99"] <= 1.5,
    }
    report = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": str(source),
        "connections": args.connections,
        "duration_s": args.duration,
        "reps": args.reps,
        "runs": results,
        "median": median,
        "ratios": ratios,
        "targets": targets,
        "shadow_server": shadow_metrics,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for k, x in ratios.items():
        print(f"{k:<24} {x:.3f}")
    print(f"shadow server: {shadow_metrics}")
    for k, ok in targets.items():
        print(f"{'PASS' if ok else 'FAIL'} {k}")
    print(f"wrote {args.out}")
    return 0


def _shadow_counts(base_url: str) -> dict[str, float]:
    """Compared, agreed and dropped texts as the shadow server's /metrics counts them."""
    import urllib.request

    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as r:
        body = r.read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        for family in ("shadow_compared_total", "shadow_agreed_total", "shadow_dropped_total"):
            if line.startswith(f"textcls_{family}{{"):
                out[family] = out.get(family, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


if __name__ == "__main__":
    raise SystemExit(main())
