"""Soak test: a real ``textcls serve`` under steady, moderate load for a long time.

Reports errors and the server's resident memory (RSS) after warm-up and at the end; passes
when there are no errors and RSS grew by at most 5% after warm-up. Then it stops the server
with SIGTERM and checks that it exits 0 and that the prediction log holds every answered text.

    .venv/bin/python -m bench.soak                        # 10 minutes, 40 requests/s
    .venv/bin/python -m bench.soak --duration 60 --warmup 15

The server binds 127.0.0.1 on a free port and the load goes nowhere else. The load is open
loop (requests start on schedule, at most ``--concurrency`` at once), so a server that slows
down shows up as late requests rather than as a quietly lower rate.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
TEXTS_FILE = REPO_ROOT / "training" / "example_data" / "support_chat_test.csv"
RSS_SAMPLE_S = 5.0
MAX_GROWTH_PCT = 5.0


@dataclass
class Report:
    duration_s: float
    warmup_s: float
    target_rate: float
    requests: int = 0
    texts_answered: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    late_starts: int = 0  # requests that could not start on time (all slots busy)
    latency_ms_p50: float = 0.0
    latency_ms_p99: float = 0.0
    latency_ms_max: float = 0.0
    rss_after_warmup_mib: float = 0.0
    rss_end_mib: float = 0.0
    rss_max_mib: float = 0.0
    rss_growth_pct: float = 0.0
    rss_samples_mib: list[tuple[float, float]] = field(default_factory=list)
    logged_rows: int = 0
    exit_code: int | None = None
    passed: bool = False


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def load_texts() -> list[str]:
    with TEXTS_FILE.open(newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_model(model_dir: Path) -> None:
    """Train the bundled example into ``model_dir`` when it holds no model (as `make example`)."""
    sys.path.insert(0, str(REPO_ROOT))
    from training.artifact import model_names

    if model_names(model_dir):
        return
    print(f"no model in {model_dir}: training the bundled example", flush=True)
    cmd = [sys.executable, "-m", "app.cli", "train", "--model-dir", str(model_dir), "--quiet"]
    subprocess.run(cmd, cwd=REPO_ROOT, check=True)


def start_server(
    model_dir: Path, workdir: Path, port: int, api_key: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        # With a key, as in production: the soak covers the auth path too.
        "TEXTCLS_API_KEYS": f"soak:{api_key}",
        "TEXTCLS_DATABASE_URL": f"sqlite:///{workdir / 'log.db'}",
        "TEXTCLS_LOG_SPILL_PATH": str(workdir / "spill.jsonl"),
    }
    cmd = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--model-dir", str(model_dir), "--log-level", "warning"]
    log = (workdir / "server.log").open("wb")
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise TimeoutError("server not ready after 180 s")


async def run_load(
    client: httpx.AsyncClient, pid: int, report: Report, concurrency: int, seed: int
) -> None:
    texts = load_texts()
    rng = random.Random(seed)
    slots = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(body: dict[str, object], n_texts: int) -> None:
        started = time.perf_counter()
        try:
            r = await client.post("/classify", json=body)
            ok = r.status_code == 200
            detail = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            ok, detail = False, repr(exc)
        finally:
            slots.release()
        report.requests += 1
        if ok:
            latencies.append((time.perf_counter() - started) * 1000)
            report.texts_answered += n_texts
        else:
            report.errors += 1
            if len(report.error_samples) < 10:
                report.error_samples.append(detail)

    async def sample_rss(t0: float) -> None:
        while True:
            report.rss_samples_mib.append((round(time.monotonic() - t0, 1), rss_bytes(pid) / 2**20))
            await asyncio.sleep(RSS_SAMPLE_S)

    t0 = time.monotonic()
    sampler = asyncio.create_task(sample_rss(t0))
    interval = 1.0 / report.target_rate
    warm_rss_taken = False
    next_at = t0
    while (now := time.monotonic()) < t0 + report.duration_s:
        if not warm_rss_taken and now >= t0 + report.warmup_s:
            report.rss_after_warmup_mib = rss_bytes(pid) / 2**20
            warm_rss_taken = True
        if now < next_at:
            await asyncio.sleep(next_at - now)
            continue
        next_at += interval
        if slots.locked():
            report.late_starts += 1
        await slots.acquire()
        # Mostly single messages, as the chat sends them; some batches, as a backfill would.
        n = 1 if rng.random() < 0.8 else rng.randint(2, 8)
        chosen = rng.sample(texts, n)
        body: dict[str, object] = {"text": chosen[0]} if n == 1 else {"texts": chosen}
        task = asyncio.create_task(one(body, n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    sampler.cancel()
    report.rss_end_mib = rss_bytes(pid) / 2**20
    after = [mib for t, mib in report.rss_samples_mib if t >= report.warmup_s]
    report.rss_max_mib = max(after or [report.rss_end_mib])
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        report.latency_ms_p50, report.latency_ms_p99 = q[49], q[98]
        report.latency_ms_max = max(latencies)


async def soak(args: argparse.Namespace) -> Report:
    report = Report(args.duration, args.warmup, args.rate)
    ensure_model(args.model_dir)
    workdir = Path(tempfile.mkdtemp(prefix="textcls-soak-"))
    port = free_port()
    api_key = secrets.token_urlsafe(24)
    proc = start_server(args.model_dir.resolve(), workdir, port, api_key)
    # Idle connections are dropped by the client before uvicorn's 5 s keep-alive timeout, as
    # a well-configured client or proxy does; else a request sent just as the server closes
    # an idle connection fails (a client configuration race, not a server error).
    limits = httpx.Limits(max_connections=args.concurrency, keepalive_expiry=2.0)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            limits=limits,
            headers={"X-API-Key": api_key},
        ) as client:
            await wait_ready(client, proc)
            print(f"server pid {proc.pid} ready on port {port}; logs in {workdir}", flush=True)
            await run_load(client, proc.pid, report, args.concurrency, args.seed)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                report.exit_code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    with sqlite3.connect(workdir / "log.db") as db:
        report.logged_rows = db.execute("SELECT COUNT(*) FROM prediction_log").fetchone()[0]
    warm = report.rss_after_warmup_mib
    report.rss_growth_pct = (report.rss_end_mib - warm) / warm * 100 if warm else 0.0
    report.passed = (
        report.errors == 0
        and report.rss_growth_pct <= MAX_GROWTH_PCT
        and report.exit_code == 0
        and report.logged_rows == report.texts_answered
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (600)")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before RSS baseline")
    parser.add_argument("--rate", type=float, default=40, help="requests per second (40)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight, max")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("TEXTCLS_MODEL_DIR", REPO_ROOT / "models")),
        help="model repository (the bundled example is trained there if it is empty)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()
    if not 0 < args.warmup < args.duration:
        parser.error("--warmup must be between 0 and --duration")
    report = asyncio.run(soak(args))
    summary = {k: v for k, v in asdict(report).items() if k != "rss_samples_mib"}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(asdict(report), indent=2) + "\n")
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
