"""``python -m bench.protocols_h2load``: bench.protocols' rows under h2load, a C load generator.

bench.protocols drives every row with one Python asyncio generator, which on a small machine
shares the CPUs with the server and costs far more per gRPC call (grpc.aio's channel) than per
HTTP/1.1 call (pre-encoded bytes on a socket). h2load (nghttp2's, ``apt-get install
nghttp2-client``) speaks both: HTTP/1.1 for /classify and V2 REST (64 connections, one request
at a time each) and HTTP/2 for gRPC (one connection, 64 streams, as a gRPC channel), so the
rows compare the server's own cost. One text, repeated (h2load sends one body). A gRPC answer
counts as one HTTP 200 (h2load reads no trailers); the rows check one call first.
Prints texts/s, the ratio to /classify and the server's CPU per request, medians of
interleaved reps.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import orjson

from bench import procstat, texts
from bench.model import MODEL_NAME, ensure_model
from bench.protocols import add_load_options, grpc_body, server_spec, v2_binary_body
from bench.servers import RunningServer, free_port

ROWS = ("classify", "v2_rest_binary", "grpc")
TEXT = "how do I top up my card with a cheque"
GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"


def row_args(row: str, base_url: str, grpc_port: int, work: Path) -> list[str]:
    """h2load's arguments for one row (bodies written under ``work``)."""
    if row == "grpc":
        message = grpc_body(TEXT, MODEL_NAME)
        (work / "grpc.bin").write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)
        return ["-c", "1", "-d", str(work / "grpc.bin"), "-H", "content-type: application/grpc",
                "-H", "te: trailers", f"http://127.0.0.1:{grpc_port}{GRPC_METHOD}"]  # fmt: skip
    if row == "classify":
        (work / "classify.json").write_bytes(orjson.dumps({"text": TEXT}))
        return ["--h1", "-d", str(work / "classify.json"), "-H", "content-type: application/json",
                f"{base_url}/classify"]  # fmt: skip
    body, n = v2_binary_body(TEXT)
    (work / "v2.bin").write_bytes(body)
    return ["--h1", "-d", str(work / "v2.bin"), "-H", "content-type: application/octet-stream",
            "-H", f"inference-header-content-length: {n}",
            f"{base_url}/v2/models/{MODEL_NAME}/infer"]  # fmt: skip


def run_h2load(argv: list[str], args: argparse.Namespace) -> tuple[float, int, int]:
    """(requests/s, succeeded, not succeeded) of one timed h2load run."""
    c = args.concurrency
    spread = ["-m", str(c)] if "--h1" not in argv else ["-c", str(c), "-m", "1"]
    cmd = ["h2load", "-t", "1", "-D", str(args.duration), f"--warm-up-time={args.warmup}"]
    out = subprocess.run([*cmd, *spread, *argv], capture_output=True, text=True, check=True)
    rate = re.search(r"finished in .*?, ([\d.]+) req/s", out.stdout)
    counts = re.search(r"(\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out.stdout)
    if rate is None or counts is None:
        raise RuntimeError(f"unexpected h2load output:\n{out.stdout}")
    done, ok = int(counts.group(1)), int(counts.group(2))
    return float(rate.group(1)), ok, done - ok


def check_grpc(grpc_port: int) -> None:
    """One ModelInfer through grpcio: the body h2load repeats is a call the server answers."""
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        channel.unary_unary(GRPC_METHOD)(grpc_body(TEXT, MODEL_NAME), timeout=30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.protocols_h2load", description=__doc__)
    add_load_options(p, seconds=int, warmup="1")
    args = p.parse_args(argv)
    if shutil.which("h2load") is None:
        print("h2load is not installed: apt-get install nghttp2-client", file=sys.stderr)
        return 2
    version_dir = ensure_model(args.model_dir, texts.data_dir(args.data))
    work = Path(tempfile.mkdtemp(prefix="textcls-h2load-"))
    grpc_port = free_port()
    runs: dict[str, list[tuple[float, float]]] = {row: [] for row in ROWS}
    with RunningServer(server_spec(version_dir, work, grpc_port), work) as server:
        check_grpc(grpc_port)
        for rep in range(args.reps):
            for row in ROWS if rep % 2 == 0 else tuple(reversed(ROWS)):
                h2 = row_args(row, server.base_url, grpc_port, work)
                cpu0 = procstat.tree_cpu_seconds(server.pid)
                rate, ok, bad = run_h2load(h2, args)
                cpu = procstat.tree_cpu_seconds(server.pid) - cpu0
                if bad:
                    raise RuntimeError(f"{row}: {bad} requests not answered 2xx")
                # The CPU covers h2load's warm-up too: divided by the calls made in it as well.
                calls = rate * (args.duration + args.warmup)
                runs[row].append((rate, cpu / max(calls, 1) * 1e6))
                print(f"  {row}: {rate:.0f} req/s, server {runs[row][-1][1]:.0f} us CPU/req",
                      flush=True)  # fmt: skip
    base = statistics.median(r for r, _ in runs["classify"])
    print("| row | texts/s | vs /classify | server CPU us/request |\n|---|---:|---:|---:|")
    for row, rs in runs.items():
        rate = statistics.median(r for r, _ in rs)
        cpu = statistics.median(c for _, c in rs)
        print(f"| {row} | {rate:.0f} | {rate / base:.2f} | {cpu:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
