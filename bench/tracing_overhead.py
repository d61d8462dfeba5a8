"""Single-text throughput of ``textcls serve`` with tracing off, old code against new, and with
tracing on, side by side in one run.

Three servers (same model, same settings, prediction log off) run at once: ``old``, the code of
``--base`` (a git ref, checked out into a temporary worktree), and ``new`` (this checkout),
both with ``OTEL_EXPORTER_OTLP_ENDPOINT`` unset; ``traced``, this checkout exporting every
request's spans over OTLP/HTTP to a sink in this process (which decodes and counts them); and
``sampled``, the same with one trace in ten kept (``OTEL_TRACES_SAMPLER_ARG=0.1``). wrk
loads them in turn, interleaved over ``--reps`` rounds so background load hits each alike;
the median requests/s of ``new`` is compared with ``old`` (target: at least 97%), and
``traced`` and ``sampled`` with ``new``.

    python -m bench.tracing_overhead [--base main] [--duration 10] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench import loadgen, texts
from bench.model import DEFAULT_MODEL_DIR, ensure_model
from bench.servers import REPO_ROOT, RunningServer, ServerSpec

VARIANTS = ("old", "new", "traced", "sampled")
SAMPLED_RATIO = "0.1"
TARGET = 0.97


class SpanSink:
    """An OTLP/HTTP endpoint that decodes each export and counts its spans."""

    def __init__(self) -> None:
        self.spans = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers["content-length"])))
                sink.spans += sum(
                    len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans
                )
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _spec(
    key: str, model_dir: Path, checkout: Path, otlp: str | None, ratio: str = "1"
) -> ServerSpec:
    argv = [
        sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", "{port}",
        "--model-dir", str(model_dir), "--log-level", "warning",
    ]  # fmt: skip
    env = {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TEXTCLS_POLL_INTERVAL_S": "0",
        "TEXTCLS_LOG_PREDICTIONS": "false",
        "PYTHONPATH": str(checkout),
        # Set for every server, so that only "traced" exports: "" counts as unset.
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp or "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": ratio,
    }
    return ServerSpec(key, f"textcls serve ({key})", argv, env, cwd=checkout)


def _worktree(ref: str, where: Path) -> Path:
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(where), ref],
        cwd=REPO_ROOT, check=True, capture_output=True,
    )  # fmt: skip
    return where


def _remove_worktree(where: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(where)], cwd=REPO_ROOT, capture_output=True
    )


def _commit(ref: str) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tracing_overhead", description=__doc__)
    p.add_argument("--base", default="main", help="The old code: a git ref (default: main).")
    p.add_argument("--duration", type=float, default=10.0, help="Seconds per measured run.")
    p.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds per server.")
    p.add_argument("--reps", type=int, default=5, help="Interleaved rounds; medians reported.")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--data", type=Path, default=None, help="BANKING77 folder.")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = p.parse_args(argv)

    data = texts.data_dir(args.data)
    model_dir = ensure_model(args.model_dir, data).parent.parent
    bodies = texts.single_bodies(texts.read_texts(data / "test.csv"))
    rps: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu_ms: dict[str, list[float]] = {v: [] for v in VARIANTS}
    errors: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        old = _worktree(args.base, work / "old")
        stack.callback(_remove_worktree, old)
        sinks = {"traced": SpanSink(), "sampled": SpanSink()}  # one each, to count apart
        for sink in sinks.values():
            stack.callback(sink.close)
        body_file = loadgen.write_bodies(work / "bodies.jsonl", bodies)
        specs = {
            "old": _spec("old", model_dir, old, None),
            "new": _spec("new", model_dir, REPO_ROOT, None),
            "traced": _spec("traced", model_dir, REPO_ROOT, sinks["traced"].endpoint),
            "sampled": _spec(
                "sampled", model_dir, REPO_ROOT, sinks["sampled"].endpoint, SAMPLED_RATIO
            ),
        }
        servers = {v: stack.enter_context(RunningServer(specs[v], work)) for v in VARIANTS}
        answered = dict.fromkeys(sinks, 0)  # every 200 of a traced server, warm-up included
        rounds = loadgen.Rounds(args.connections, args.warmup, args.duration, args.reps)
        for rep, v, r in loadgen.run_rounds(servers, body_file, rounds):
            if v in answered:
                answered[v] += r.wrk.ok_requests
            if rep == 0:
                continue
            rps[v].append(r.requests_per_s)
            cpu_ms[v].append(r.server_cpu_ms_per_request)
            errors[v] += r.wrk.errors
            print(
                f"rep {rep} {v:<7} {r.requests_per_s:8.1f} req/s "
                f"{cpu_ms[v][-1]:6.2f} server CPU ms/request  errors {r.wrk.errors}",
                flush=True,
            )
        for v in VARIANTS:
            servers[v].stop()  # a traced one exports what it still holds
        spans = {v: sinks[v].spans / max(answered[v], 1) for v in sinks}

    median = {v: statistics.median(rps[v]) for v in VARIANTS}
    median_cpu = {v: statistics.median(cpu_ms[v]) for v in VARIANTS}
    new_vs_old = median["new"] / median["old"]
    # Server CPU per request: steadier than requests/s on a machine shared with other work.
    cpu_new_vs_old = median_cpu["old"] / median_cpu["new"]
    vs_off = {v: median[v] / median["new"] for v in sinks}
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.tracing_overhead " + " ".join(argv or sys.argv[1:]),
        "base": {"ref": args.base, "commit": _commit(args.base)},
        "new": {"commit": _commit("HEAD")},
        "connections": args.connections,
        "duration_s": args.duration,
        "reps": args.reps,
        "requests_per_s": rps,
        "median_requests_per_s": median,
        "server_cpu_ms_per_request": cpu_ms,
        "median_server_cpu_ms_per_request": median_cpu,
        "new_vs_old": new_vs_old,
        "cpu_new_vs_old": cpu_new_vs_old,
        "tracing_on_vs_off": vs_off,
        "sampled_ratio": float(SAMPLED_RATIO),
        "spans_exported_per_request": spans,
        "errors": errors,
        "target": TARGET,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tracing_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    verdict = "meets" if new_vs_old >= TARGET else "MISSES"
    print(json.dumps({"median": median, "cpu_ms": median_cpu}))
    print(f"tracing off, new code: {new_vs_old:.1%} of the old's requests/s ({verdict} the "
          f"{TARGET:.0%} target); old/new server CPU per request {cpu_new_vs_old:.1%}")  # fmt: skip
    for v in sinks:
        print(f"tracing on ({v}): {vs_off[v]:.1%} of tracing off; "
              f"{spans[v]:.2f} spans exported per request")  # fmt: skip
    return 0 if new_vs_old >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
