"""``python -m bench.explain_latency``: /explain latency, and what /explain traffic costs /classify.

Starts one real server (uvicorn, one worker, the prediction log on SQLite) with the BANKING77
model and measures, with a small raw-socket HTTP/1.1 client (keep-alive, so the client costs
little CPU on a 2-core machine):

1. ``explain``: one text per request, one connection, BANKING77 test texts in file order:
   p50/p90/p99 in ms (the acceptance target is p50 <= 50 ms).
2. ``/classify`` closed-loop at ``--connections`` for ``--duration`` s, three ways, interleaved
   ``--reps`` times (medians reported):
   - ``alone``: only /classify traffic;
   - ``with_explain``: plus one client sending /explain back to back;
   - ``with_same_rows``: plus one client sending, back to back, /classify requests holding the
     very rows an explanation scores (the text and each one-token-shorter variant);
   - ``with_same_rows_routed``: the same, through the FastAPI route rather than the /classify
     fast path (the HTTP path /explain takes, like every route but /classify).
   /explain costs /classify nothing beyond its model work when ``with_explain`` is no slower
   than ``with_same_rows`` (both add the same model rows). The server's CPU per background
   request (its CPU beyond what its /classify requests cost alone) compares the two with less
   noise than throughput on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.plane.tokens import without_span
from bench import procstat
from bench.model import DEFAULT_MODEL_DIR, ensure_model
from bench.servers import RunningServer, ServerSpec, uvicorn_argv
from bench.texts import data_dir, read_texts
from training.tokenize import token_spans


def _request(path: str, body: dict[str, Any], routed: bool = False) -> bytes:
    """The raw request; ``routed``: with a repeated header, which the /classify fast path
    leaves to the FastAPI route (the path /explain and every other route take)."""
    payload = json.dumps(body).encode()
    extra = "X-Bench: 1\r\nX-Bench: 1\r\n" if routed else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class Connection:
    """One keep-alive HTTP/1.1 connection; ``call`` returns (status, seconds)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def call(self, raw: bytes) -> tuple[int, float]:
        started = time.perf_counter()
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length)
        if status >= 400:
            print(f"HTTP {status}: {body[:300]!r}", file=sys.stderr)
        return status, time.perf_counter() - started

    def close(self) -> None:
        self.writer.close()


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    q = statistics.quantiles(ms, n=100)
    return {"p50_ms": statistics.median(ms), "p90_ms": q[89], "p99_ms": q[98], "n": len(ms)}


async def explain_latency(port: int, texts: list[str], n: int, warmup: int) -> dict[str, Any]:
    conn = await Connection.open(port)
    times = []
    for i in range(warmup + n):
        status, s = await conn.call(_request("/explain", {"text": texts[i % len(texts)]}))
        assert status == 200, status
        if i >= warmup:
            times.append(s)
    conn.close()
    return percentiles(times)


async def classify_load(
    port: int,
    bodies: list[bytes],
    connections: int,
    duration: float,
    background: list[bytes] | None,
) -> dict[str, Any]:
    """Closed-loop /classify on ``connections``; ``background`` back to back on one more."""
    stop = time.perf_counter() + duration
    times: list[float] = []
    errors = 0
    background_done = 0

    async def worker(k: int) -> None:
        nonlocal errors
        conn = await Connection.open(port)
        i = k
        while time.perf_counter() < stop:
            status, s = await conn.call(bodies[i % len(bodies)])
            i += connections
            times.append(s)
            errors += status != 200
        conn.close()

    async def side() -> None:
        nonlocal background_done, errors
        assert background is not None
        conn = await Connection.open(port)
        i = 0
        while time.perf_counter() < stop:
            status, _ = await conn.call(background[i % len(background)])
            errors += status != 200
            background_done += 1
            i += 1
        conn.close()

    tasks = [worker(k) for k in range(connections)]
    if background is not None:
        tasks.append(side())
    await asyncio.gather(*tasks)
    out = percentiles(times)
    out.update(
        rps=len(times) / duration,
        errors=errors,
        background_rps=background_done / duration,
        classify_n=len(times),
        background_n=background_done,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.explain_latency", description=__doc__)
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--n", type=int, default=300, help="/explain requests measured.")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    folder = data_dir(args.data)
    version_dir = ensure_model(args.model_dir, folder)
    texts = read_texts(folder / "test.csv")
    work = Path(tempfile.mkdtemp(prefix="explain-bench-"))
    env = {
        "TEXTCLS_MODEL_DIR": str(version_dir.parent.parent),
        "TEXTCLS_DATABASE_URL": f"sqlite:///{work / 'log.db'}",
        "TEXTCLS_LOG_SPILL_PATH": str(work / "spill.jsonl"),
        "TEXTCLS_POLL_INTERVAL_S": "0",
    }
    spec = ServerSpec(
        "textcls_explain", "textcls", uvicorn_argv("app.main:create_app_from_env"), env
    )
    classify = [_request("/classify", {"text": t}) for t in texts]
    explain = [_request("/explain", {"text": t}) for t in texts[:500]]
    rows = [[t, *(without_span(t, s, e) for s, e in token_spans(t)[:64])] for t in texts[:500]]
    same_rows = [_request("/classify", {"texts": r}) for r in rows]
    same_rows_routed = [_request("/classify", {"texts": r}, routed=True) for r in rows]
    report: dict[str, Any] = {"model": str(version_dir), "cpus": os.cpu_count()}
    with RunningServer(spec, work) as server:
        port = server.port
        report["explain"] = asyncio.run(explain_latency(port, texts, args.n, warmup=30))
        print(f"/explain: {report['explain']}", file=sys.stderr)
        backgrounds = {
            "alone": None,
            "with_explain": explain,
            "with_same_rows": same_rows,
            "with_same_rows_routed": same_rows_routed,
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in backgrounds}
        asyncio.run(classify_load(port, classify, args.connections, 2.0, None))  # warm-up
        for _ in range(args.reps):
            for name, background in backgrounds.items():
                cpu_before = procstat.tree_cpu_seconds(server.pid)
                result = asyncio.run(
                    classify_load(port, classify, args.connections, args.duration, background)
                )
                result["server_cpu_s"] = procstat.tree_cpu_seconds(server.pid) - cpu_before
                print(f"/classify {name}: {result}", file=sys.stderr)
                runs[name].append(result)
    report["classify"] = {
        name: {
            key: statistics.median(r[key] for r in results)
            for key in ("rps", "p50_ms", "p99_ms", "background_rps", "errors")
        }
        for name, results in runs.items()
    }
    # Server CPU per background request: what the run used beyond its /classify requests,
    # each costing what a /classify request cost alone in the same repetition.
    for name in ("with_explain", "with_same_rows", "with_same_rows_routed"):
        per_request = []
        for alone, run in zip(runs["alone"], runs[name], strict=True):
            classify_cpu = alone["server_cpu_s"] / alone["classify_n"] * run["classify_n"]
            per_request.append((run["server_cpu_s"] - classify_cpu) / run["background_n"] * 1000)
        report["classify"][name]["server_cpu_ms_per_background_request"] = statistics.median(
            per_request
        )
    c = report["classify"]
    report["ratios"] = {
        "explain_vs_same_rows_cpu_per_request": (
            c["with_explain"]["server_cpu_ms_per_background_request"]
            / c["with_same_rows"]["server_cpu_ms_per_background_request"]
        ),
        "explain_vs_same_rows_routed_cpu_per_request": (
            c["with_explain"]["server_cpu_ms_per_background_request"]
            / c["with_same_rows_routed"]["server_cpu_ms_per_background_request"]
        ),
        "with_explain_vs_same_rows_routed_rps": (
            c["with_explain"]["rps"] / c["with_same_rows_routed"]["rps"]
        ),
        "with_explain_vs_alone_rps": c["with_explain"]["rps"] / c["alone"]["rps"],
        "with_explain_vs_same_rows_rps": c["with_explain"]["rps"] / c["with_same_rows"]["rps"],
        "with_explain_vs_same_rows_p50": c["with_explain"]["p50_ms"]
        / c["with_same_rows"]["p50_ms"],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
