"""Throughput of ``textcls serve`` with the prediction log off, on SQLite and on PostgreSQL.

Three servers (same model, same settings but the log) run side by side; wrk loads them in
turn, interleaved over ``--reps`` rounds so background load on the machine hits every variant
alike; the median requests/s of each is compared with log off (target: >= 90%). After the runs
each server gets SIGTERM (its writer flushes) and the rows in its database are compared with
the 200s wrk saw: rows can only exceed them by requests answered after wrk stopped counting.

Throughput on a shared machine is noisy, so the CPU the log costs is also measured directly:
a log writer in this process is fed rows at a steady rate, and the CPU time of its thread
(and of the PostgreSQL server processes) per row is compared with the server's CPU time per
request with the log off. That ratio is what logging costs a CPU-bound server.

    python -m bench.log_overhead [--duration 20] [--reps 3] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.predlog.engine import create_db_engine
from app.predlog.records import PredictionRecord
from app.predlog.tables import PredictionLog
from app.predlog.writer import PredictionLogWriter
from bench import loadgen, texts
from bench.model import DEFAULT_MODEL_DIR, ensure_model
from bench.postgres import DEFAULT_URL, bench_schema
from bench.servers import REPO_ROOT, RunningServer, ServerSpec

VARIANTS = ("off", "sqlite", "postgresql")
TARGET = 0.90


def _spec(key: str, model_dir: Path, work: Path, db: str | None) -> ServerSpec:
    argv = [
        sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", "{port}",
        "--model-dir", str(model_dir), "--log-level", "warning",
    ]  # fmt: skip
    env = {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TEXTCLS_POLL_INTERVAL_S": "0",
        "TEXTCLS_LOG_PREDICTIONS": "true" if db else "false",
        "TEXTCLS_DATABASE_URL": db or f"sqlite:///{work / 'unused.db'}",
        "TEXTCLS_LOG_SPILL_PATH": str(work / f"{key}.spill.jsonl"),
        "TEXTCLS_SHUTDOWN_GRACE_S": "10",
    }
    return ServerSpec(key, f"textcls serve, log {key}", argv, env)


def _rows(url: str) -> int:
    engine = create_db_engine(url)
    try:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(PredictionLog)) or 0
    finally:
        engine.dispose()


def _thread_cpu_s(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_s() -> float:
    """CPU time of every live ``postgres`` process (the writer's backend among them)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def writer_cpu_us_per_row(
    url: str, work: Path, rate: float, seconds: float, text: str
) -> tuple[float, float]:
    """(log writer thread, PostgreSQL processes) CPU microseconds per row at ``rate`` rows/s."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, log_spill_path=work / "writer.spill.jsonl"
    )
    writer = PredictionLogWriter(settings)
    writer.start()
    assert writer._thread is not None and writer._thread.native_id is not None
    tid = writer._thread.native_id
    cpu0, pg0 = _thread_cpu_s(tid), _postgres_cpu_s()
    n, started = 0, time.perf_counter()
    ranking = [("card_arrival", 0.9), ("lost_or_stolen_card", 0.05), ("card_linking", 0.01)]
    while time.perf_counter() - started < seconds:
        now = datetime.now(UTC)
        record = PredictionRecord(
            request_id=uuid.uuid4().hex, index=0, created_at=now, client=None, model="banking77",
            version=1, text=text, label="card_arrival", confidence=0.9, fallback=False,
            ranking=ranking, latency_ms=3.0, batch_size=16,
        )  # fmt: skip
        writer.submit([record])
        n += 1
        time.sleep(max(0.0, started + n / rate - time.perf_counter()))
    if not writer.flush(60):
        raise RuntimeError(f"log writer could not write to {url}: {writer.status}")
    cpu1, pg1 = _thread_cpu_s(tid), _postgres_cpu_s()
    writer.stop(10)
    return 1e6 * (cpu1 - cpu0) / n, 1e6 * (pg1 - pg0) / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.log_overhead", description=__doc__)
    p.add_argument("--duration", type=float, default=20.0, help="Seconds per measured run.")
    p.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds per server.")
    p.add_argument("--reps", type=int, default=3, help="Interleaved rounds; medians reported.")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--data", type=Path, default=None, help="BANKING77 folder.")
    p.add_argument("--postgres-url", default=DEFAULT_URL)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    p.add_argument("--writer-rate", type=float, default=1000.0, help="Rows/s fed to the writer.")
    p.add_argument("--writer-seconds", type=float, default=10.0)
    args = p.parse_args(argv)

    data = texts.data_dir(args.data)
    version_dir = ensure_model(args.model_dir, data)
    model_dir = version_dir.parent.parent
    bodies = texts.single_bodies(texts.read_texts(data / "test.csv"))
    rps: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu_ms: dict[str, list[float]] = {v: [] for v in VARIANTS}  # server CPU per request
    answered: dict[str, int] = dict.fromkeys(VARIANTS, 0)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        body_file = loadgen.write_bodies(work / "bodies.jsonl", bodies)
        urls = {
            "off": None,
            "sqlite": f"sqlite:///{work / 'log.db'}",
            "postgresql": stack.enter_context(bench_schema(args.postgres_url)),
        }
        servers = {}
        for v in VARIANTS:
            servers[v] = stack.enter_context(
                RunningServer(_spec(v, model_dir, work, urls[v]), work)
            )
            print(f"started {v} on {servers[v].base_url}", flush=True)
        rounds = loadgen.Rounds(args.connections, args.warmup, args.duration, args.reps)
        for rep, v, r in loadgen.run_rounds(servers, body_file, rounds):
            answered[v] += r.wrk.ok_requests
            if rep == 0:
                continue
            rps[v].append(r.requests_per_s)
            cpu_ms[v].append(r.server_cpu_ms_per_request)
            print(
                f"rep {rep} {v:<10} {r.requests_per_s:8.1f} req/s "
                f"{cpu_ms[v][-1]:6.2f} server CPU ms/request  errors {r.wrk.errors}",
                flush=True,
            )
        for v in VARIANTS:
            servers[v].stop()
        logged = {v: _rows(u) for v, u in urls.items() if u}
        writer_cpu = {}
        for v in ("sqlite", "postgresql"):
            url = urls[v]
            assert url is not None
            thread_us, pg_us = writer_cpu_us_per_row(
                url,
                work,
                args.writer_rate,
                args.writer_seconds,
                bodies[0]["text"],  # type: ignore[arg-type]
            )
            own = thread_us + (pg_us if v == "postgresql" else 0.0)
            writer_cpu[v] = {"writer_thread_us": thread_us, "postgres_us": pg_us, "total_us": own}
            print(f"log writer on {v}: {thread_us:.1f} us thread + {pg_us:.1f} us PostgreSQL "
                  f"CPU per row at {args.writer_rate:.0f} rows/s")  # fmt: skip

    median = {v: statistics.median(rps[v]) for v in VARIANTS}
    median_cpu = {v: statistics.median(cpu_ms[v]) for v in VARIANTS}
    off_us = 1000 * median_cpu["off"]
    cpu_ratio = {v: off_us / (off_us + writer_cpu[v]["total_us"]) for v in writer_cpu}
    ratio = {v: median[v] / median["off"] for v in ("sqlite", "postgresql")}
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.log_overhead " + " ".join(argv or sys.argv[1:]),
        "connections": args.connections,
        "duration_s": args.duration,
        "reps": args.reps,
        "requests_per_s": rps,
        "median_requests_per_s": median,
        "ratio_to_log_off": ratio,
        "server_cpu_ms_per_request": cpu_ms,
        "median_server_cpu_ms_per_request": median_cpu,
        "writer_cpu_per_row": writer_cpu,
        "writer_rate_rows_per_s": args.writer_rate,
        "cpu_bound_ratio_to_log_off": cpu_ratio,
        "target": TARGET,
        "rows_logged": logged,
        "ok_responses_counted_by_wrk": answered,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "log_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    summary = {"median": median, "cpu_ms": median_cpu, "ratio": ratio, "cpu_ratio": cpu_ratio}
    print(json.dumps({**summary, "rows": logged, "ok": answered}))
    for v in ("sqlite", "postgresql"):
        verdict = "meets" if ratio[v] >= TARGET else "MISSES"
        print(f"log on {v}: {ratio[v]:.1%} of log off ({verdict} the {TARGET:.0%} target)")
        print(f"  CPU-bound estimate: {cpu_ratio[v]:.1%} (server {off_us:.0f} us/request with log "
              f"off + {writer_cpu[v]['total_us']:.0f} us/row for the log)")  # fmt: skip
        if logged[v] < answered[v]:
            print(f"  {v}: {answered[v] - logged[v]} answered predictions are NOT in the log!")
    return 0 if all(r >= TARGET for r in ratio.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
