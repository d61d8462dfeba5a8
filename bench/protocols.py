"""``python -m bench.protocols``: /classify, V2 REST and V2 gRPC on one server, same generator.

One ``textcls serve`` (log SQLite, gRPC on) and one Python asyncio load generator
(bench/asyncload.py) at 64 concurrent single-text callers; rows interleaved over ``--reps``,
medians reported with each row's ratio to /classify from the same run. Then the client
overhead: CPU per call of textcls-client against plain httpx, sequential calls.
Writes bench/results/protocols.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.edge.grpc.proto import grpc_predict_v2_pb2 as pb
from app.plane.v2.tensors import encode_bytes
from bench import procstat, texts
from bench.asyncload import LoadRun, grpc_callers, http_callers, http_request, run_load
from bench.model import DEFAULT_MODEL_DIR, MODEL_NAME, ensure_model
from bench.servers import REPO_ROOT, RunningServer, ServerSpec, free_port

ROWS = ("classify", "v2_rest_json", "v2_rest_binary", "grpc")
TITLES = {
    "classify": "POST /classify {text}",
    "v2_rest_json": "POST /v2/models/{m}/infer, JSON tensors",
    "v2_rest_binary": "POST /v2/models/{m}/infer, binary tensors (tritonclient.http's default)",
    "grpc": "gRPC ModelInfer, raw tensors (tritonclient.grpc's form)",
}


def add_load_options(
    p: argparse.ArgumentParser, seconds: Callable[[str], float] = float, warmup: str = "1.5"
) -> None:
    """The model, data and load options bench.protocols and bench.protocols_h2load share
    (``seconds``: the type of --duration and --warmup; h2load takes whole seconds). The
    defaults are strings so that argparse parses them with ``seconds`` too."""
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--duration", type=seconds, default="6")
    p.add_argument("--warmup", type=seconds, default=warmup)
    p.add_argument("--reps", type=int, default=3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.protocols", description=__doc__)
    add_load_options(p)
    p.add_argument("--client-calls", type=int, default=400)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "protocols.json")
    return p.parse_args(argv)


def _say(message: str) -> None:
    print(f"[protocols {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def v2_json_body(text: str) -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]}
    )


def v2_binary_body(text: str) -> tuple[bytes, int]:
    raw = encode_bytes([text.encode()])
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "text", "shape": [1], "datatype": "BYTES",
                 "parameters": {"binary_data_size": len(raw)}}
            ],
            "parameters": {"binary_data_output": True},
        }
    )  # fmt: skip
    return header + raw, len(header)


def grpc_body(text: str, model: str) -> bytes:
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="text", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(encode_bytes([text.encode()]))
    return request.SerializeToString()


async def one_row(row: str, server: RunningServer, grpc_port: int, bodies: list[str],
                  args: argparse.Namespace) -> LoadRun:  # fmt: skip
    port, c = server.port, args.concurrency
    json_type = {"Content-Type": "application/json"}
    closer: Callable[[], Awaitable[None] | None]
    if row == "grpc":
        requests = [grpc_body(t, MODEL_NAME) for t in bodies]
        method = "/inference.GRPCInferenceService/ModelInfer"
        callers, closer = await grpc_callers(f"127.0.0.1:{grpc_port}", method, requests, c)
    else:
        path = "/classify" if row == "classify" else f"/v2/models/{MODEL_NAME}/infer"
        if row == "classify":
            requests = [http_request(path, orjson.dumps({"text": t}), json_type) for t in bodies]
        elif row == "v2_rest_json":
            requests = [http_request(path, v2_json_body(t), json_type) for t in bodies]
        else:
            requests = []
            for t in bodies:
                body, n = v2_binary_body(t)
                headers = {"Content-Type": "application/octet-stream",
                           "Inference-Header-Content-Length": str(n)}  # fmt: skip
                requests.append(http_request(path, body, headers))
        callers, closer = await http_callers("127.0.0.1", port, requests, c)
    cpu0 = procstat.tree_cpu_seconds(server.pid)
    result = await run_load(callers, args.warmup, args.duration)
    result_server_cpu = procstat.tree_cpu_seconds(server.pid) - cpu0
    done = closer()
    if done is not None:
        await done
    _say(f"{row}: {result.requests_per_s:.0f} req/s, {result.errors} errors, "
         f"p99 {result.p99_ms:.1f} ms, client CPU {result.client_cpu_s:.2f} s, "
         f"server CPU {result_server_cpu:.2f} s")  # fmt: skip
    return result


def client_overhead(url: str, bodies: list[str], calls: int) -> dict[str, float]:
    """CPU microseconds per sequential call in this process: httpx alone vs textcls-client."""
    sys.path.insert(0, str(REPO_ROOT / "clients" / "python" / "src"))
    from textcls_client import Client

    def measure(call: Callable[[str], object]) -> tuple[float, float]:
        for t in bodies[:20]:
            call(t)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(calls):
            call(bodies[i % len(bodies)])
        n = calls
        return (time.process_time() - cpu0) / n * 1e6, (time.perf_counter() - wall0) / n * 1e6

    with httpx.Client(base_url=url) as raw:

        def plain(t: str) -> object:
            r = raw.post("/classify", json={"text": t})
            r.raise_for_status()
            return r.json()

        httpx_cpu, httpx_wall = measure(plain)
    with Client(url) as client:
        client_cpu, client_wall = measure(lambda t: client.classify(t))
    return {
        "calls": calls,
        "httpx_cpu_us": httpx_cpu,
        "client_cpu_us": client_cpu,
        "overhead_cpu_us": client_cpu - httpx_cpu,
        "httpx_wall_us": httpx_wall,
        "client_wall_us": client_wall,
    }


def server_spec(version_dir: Path, work: Path, grpc_port: int) -> ServerSpec:
    """The one server every protocol row is measured on: ``textcls serve``, log SQLite, gRPC on."""
    return ServerSpec(
        "textcls_protocols",
        "textcls serve, log SQLite, gRPC on",
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", "{port}",
         "--model-dir", str(version_dir.parent.parent)],
        {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TEXTCLS_GRPC_PORT": str(grpc_port),
            "TEXTCLS_DATABASE_URL": f"sqlite:///{work / 'log.db'}",
            "TEXTCLS_LOG_SPILL_PATH": str(work / "spill.jsonl"),
            "TEXTCLS_SHUTDOWN_GRACE_S": "5",
        },
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = texts.data_dir(args.data)
    version_dir = ensure_model(args.model_dir, data, log=_say)
    bodies = texts.read_texts(data / "test.csv")[:2000]
    work = Path(tempfile.mkdtemp(prefix="textcls-protocols-"))
    grpc_port = free_port()
    spec = server_spec(version_dir, work, grpc_port)
    runs: dict[str, list[LoadRun]] = {row: [] for row in ROWS}
    with RunningServer(spec, work) as server:
        _say(f"server ready in {server.cold_start_s:.1f} s; {args.reps} reps of {ROWS}")
        for rep in range(args.reps):
            order = ROWS if rep % 2 == 0 else tuple(reversed(ROWS))  # no row always goes first
            for row in order:
                runs[row].append(asyncio.run(one_row(row, server, grpc_port, bodies, args)))
        overhead = client_overhead(server.base_url, bodies, args.client_calls)
    base = statistics.median(r.requests_per_s for r in runs["classify"])
    table: dict[str, Any] = {}
    for row in ROWS:
        rates = [r.requests_per_s for r in runs[row]]
        table[row] = {
            "title": TITLES[row],
            "texts_per_s": statistics.median(rates),
            "ratio_to_classify": statistics.median(rates) / base if base else 0.0,
            "errors": sum(r.errors for r in runs[row]),
            "p99_ms": statistics.median(r.p99_ms for r in runs[row]),
            "client_cpu_us_per_call": statistics.median(
                r.client_cpu_s / max(r.ok, 1) * 1e6 for r in runs[row]
            ),
            "runs": [r.as_dict() for r in runs[row]],
        }
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.protocols " + " ".join(argv or sys.argv[1:]),
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "reps": args.reps,
        "cpus": procstat.cpu_count(),
        "model": str(version_dir),
        "rows": table,
        "client_overhead": overhead,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| row | texts/s | vs /classify | errors | p99 ms | generator CPU us/call |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in ROWS:
        t = table[row]
        cells = [
            t["title"],
            f"{t['texts_per_s']:.0f}",
            f"{t['ratio_to_classify']:.2f}",
            str(t["errors"]),
            f"{t['p99_ms']:.1f}",
            f"{t['client_cpu_us_per_call']:.0f}",
        ]
        print("| " + " | ".join(cells) + " |")
    print(f"client overhead: {json.dumps(overhead)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
