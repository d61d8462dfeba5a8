"""``python -m bench``: run every row in one go and write bench/results/<UTC time>.json and .md."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import loadgen, rows, service_metrics, texts
from bench.baselines.shaping import MODEL_PATH_ENV
from bench.limit import LimitResult, SignatureRunner
from bench.loadgen import LoadgenError, LoadResult
from bench.model import DEFAULT_MODEL_DIR, ModelError, ensure_model
from bench.postgres import DEFAULT_URL, URL_ENV, PostgresUnavailable, bench_schema
from bench.procstat import cpu_count
from bench.report import add_ratios, evaluate_targets, write_results
from bench.servers import (
    REPO_ROOT,
    RunningServer,
    ServerError,
    ServerSpec,
    stop_all,
    uvicorn_argv,
)
from training.artifact import read_metadata

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2
BATCH_TEXTS = 32
# (duration_s, warmup_s, reps, server_warmup_s, limit_s)
FULL = (8.0, 2.0, 5, 5.0, 3.0)
QUICK = (4.0, 1.0, 1, 2.0, 1.5)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="Short rows, textcls at 64 conn only.")
    p.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="Model repository holding banking77 (trained there if absent).",
    )
    p.add_argument(
        "--retrain",
        action="store_true",
        help="Train a new banking77 version first (the trainer's current defaults).",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"BANKING77 folder (default: ${texts.DATA_ENV} or {texts.DEFAULT_DATA_DIR}).",
    )
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    p.add_argument("--duration", type=float, help="Seconds per measured wrk run.")
    p.add_argument("--warmup", type=float, help="Unmeasured seconds before each run.")
    p.add_argument("--reps", type=int, help="Measurements per row (rows interleaved); median.")
    p.add_argument("--server-warmup", type=float, help="Load before reading a server's RSS.")
    p.add_argument("--limit-seconds", type=float, help="Seconds per in-process limit run.")
    p.add_argument("--rows", default="", help="Comma-separated row keys to run (default: all).")
    p.add_argument("--workers", type=int, default=1, help="textcls serve --workers.")
    p.add_argument(
        "--textcls-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Extra environment for every textcls server (tuning), repeatable.",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Tuning: also run a second textcls (log SQLite) with this environment change, "
        "its rows interleaved with the default one's; repeatable.",
    )
    p.add_argument(
        "--variant-workers", type=int, default=None, help="Tuning: the variant's --workers."
    )
    p.add_argument(
        "--variant-checkout",
        type=Path,
        default=None,
        help="Old vs new: the variant runs the code of this checkout (another git worktree) "
        "instead of this one's, its rows interleaved with the default's.",
    )
    p.add_argument(
        "--variant-model-dir",
        type=Path,
        default=None,
        help="Old vs new models: the variant serves this model repository (a banking77 trained "
        "by other code) instead of --model-dir's, its rows interleaved with the default's.",
    )
    p.add_argument(
        "--variant-log-level",
        default="info",
        help="Tuning: the variant's --log-level (textcls serve's default is info).",
    )
    p.add_argument(
        "--postgres-url",
        default=os.environ.get(URL_ENV, DEFAULT_URL),
        help=f"PostgreSQL for the log row (default: ${URL_ENV} or {DEFAULT_URL}).",
    )
    p.add_argument("--wrk-timeout", type=float, default=30.0, help="wrk --timeout, seconds.")
    args = p.parse_args(argv)  # fmt: skip
    defaults = QUICK if args.quick else FULL
    for name, default in zip(
        ("duration", "warmup", "reps", "server_warmup", "limit_seconds"), defaults, strict=True
    ):
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def _say(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _env_pairs(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--textcls-env expects KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def server_specs(
    args: argparse.Namespace, version_dir: Path, work: Path, pg_url: str | None
) -> dict[str, ServerSpec]:
    """Every server a run may start; the baselines serve the same version folder."""
    common = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    baseline_env = {**common, MODEL_PATH_ENV: str(version_dir)}
    model_dir = version_dir.parent.parent

    def textcls_argv(workers: int, log_level: str = "info", models: Path = model_dir) -> list[str]:
        # textcls serve's own defaults (log level info, no access log), as `make run` runs it.
        return [
            sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", "{port}",
            "--model-dir", str(models), "--workers", str(workers), "--log-level", log_level,
        ]  # fmt: skip

    def textcls_env(key: str, db: str | None) -> dict[str, str]:
        env = {
            **common,
            "TEXTCLS_LOG_PREDICTIONS": "true" if db else "false",
            "TEXTCLS_DATABASE_URL": db or f"sqlite:///{work / 'unused.db'}",
            "TEXTCLS_LOG_SPILL_PATH": str(work / f"{key}.spill.jsonl"),
            "TEXTCLS_SHUTDOWN_GRACE_S": "5",
        }
        return {**env, **_env_pairs(args.textcls_env)}

    specs = [
        ServerSpec(rows.NOOP, "FastAPI no-op", uvicorn_argv("bench.baselines.noop_app:create_app"),
                   baseline_env),
        ServerSpec(rows.KERAS_PREDICT, "baseline A (Keras model.predict)",
                   uvicorn_argv("bench.baselines.keras_predict_app:create_app"), baseline_env),
        ServerSpec(rows.SIGNATURE, "baseline B (signature per request)",
                   uvicorn_argv("bench.baselines.signature_app:create_app"), baseline_env),
        ServerSpec(rows.TEXTCLS, "textcls serve, log SQLite", textcls_argv(args.workers),
                   textcls_env(rows.TEXTCLS, f"sqlite:///{work / 'textcls.db'}")),
        ServerSpec(rows.TEXTCLS_NOLOG, "textcls serve, log off", textcls_argv(args.workers),
                   textcls_env(rows.TEXTCLS_NOLOG, None)),
    ]  # fmt: skip
    if pg_url:
        specs.append(
            ServerSpec(
                rows.TEXTCLS_PG,
                "textcls serve, log PostgreSQL",
                textcls_argv(args.workers),
                textcls_env(rows.TEXTCLS_PG, pg_url),
            )
        )
    if has_variant(args):
        workers = args.variant_workers or args.workers
        checkout = args.variant_checkout.resolve() if args.variant_checkout else None
        models = args.variant_model_dir.resolve() if args.variant_model_dir else model_dir
        change = " ".join(
            [*args.variant, f"workers={workers}", f"log-level={args.variant_log_level}"]
            + ([f"checkout={checkout}"] if checkout else [])
            + ([f"model-dir={models}"] if args.variant_model_dir else [])
        )
        specs.append(ServerSpec(
            rows.TEXTCLS_VARIANT, f"textcls serve, log SQLite, {change}",
            textcls_argv(workers, args.variant_log_level, models),
            {**textcls_env(rows.TEXTCLS_VARIANT, f"sqlite:///{work / 'variant.db'}"),
             **({"PYTHONPATH": str(checkout)} if checkout else {}),
             **_env_pairs(args.variant)},
            cwd=checkout,
        ))  # fmt: skip
    return {s.key: s for s in specs}


def has_variant(args: argparse.Namespace) -> bool:
    """Whether a second textcls server (a tuning change, or another checkout) runs."""
    return bool(
        args.variant
        or args.variant_workers
        or args.variant_log_level != "info"
        or args.variant_checkout
        or args.variant_model_dir
    )


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
            text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted" if dirty else "")


def _wrk_version() -> str:
    out = subprocess.run([loadgen.find_wrk(), "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else ""


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run(args: argparse.Namespace, say: Callable[[str], None] = _say) -> int:
    loadgen.find_wrk()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y-%m-%dT%H-%M-%SZ")
    work = REPO_ROOT / "bench" / ".work" / stamp
    work.mkdir(parents=True, exist_ok=True)
    data = texts.data_dir(args.data).resolve()
    version_dir = ensure_model(args.model_dir.resolve(), data, log=say, retrain=args.retrain)
    meta = read_metadata(version_dir)
    test_texts = texts.read_texts(data / "test.csv")
    bodies = {
        1: loadgen.write_bodies(work / "single.jsonl", texts.single_bodies(test_texts)),
        BATCH_TEXTS: loadgen.write_bodies(
            work / "batch.jsonl", texts.batch_bodies(test_texts, BATCH_TEXTS)
        ),
    }
    specs_preview = server_specs(args, version_dir, work, None)
    plan = rows.plan_rows(args.quick, variant=rows.TEXTCLS_VARIANT in specs_preview)
    if args.rows:
        wanted = {k.strip() for k in args.rows.split(",") if k.strip()}
        unknown = wanted - {r.key for r in plan}
        if unknown:
            raise ValueError(f"unknown --rows {sorted(unknown)}; known: {[r.key for r in plan]}")
        plan = [r for r in plan if r.key in wanted]
    notes: list[str] = []
    t0 = time.perf_counter()
    loadavg_start = _loadavg()
    http_runs: dict[str, list[LoadResult]] = {r.key: [] for r in plan}
    limit_runs: dict[str, list[LimitResult]] = {r.key: [] for r in plan}
    server_info: list[dict[str, Any]] = []
    service_runs: dict[str, list[dict[str, float]]] = {r.key: [] for r in plan}

    with ExitStack() as stack:
        pg_url = None
        if any(r.server == rows.TEXTCLS_PG for r in plan):
            try:
                pg_url = stack.enter_context(bench_schema(args.postgres_url))
            except PostgresUnavailable as exc:
                notes.append(f"PostgreSQL row not measured: {exc}")
                say(notes[-1])
                plan = [r for r in plan if r.server != rows.TEXTCLS_PG]
        specs = server_specs(args, version_dir, work, pg_url)
        servers: dict[str, RunningServer] = {}
        started_servers: list[RunningServer] = []
        stack.callback(stop_all, started_servers)
        for key in dict.fromkeys(r.server for r in plan if r.server):
            server = RunningServer(specs[key], work)
            started_servers.append(server)
            say(f"starting {key} ...")
            cold = server.start()
            loadgen.run_wrk(
                server.classify_url, bodies[1], rows.COMPARE_CONNECTIONS, args.server_warmup, 1,
                server.pid, args.wrk_timeout,
            )  # fmt: skip
            rss = server.rss_bytes()
            say(f"{key}: ready in {cold:.1f} s, RSS after warm-up {rss / 2**20:.0f} MiB")
            servers[key] = server
            server_info.append(
                {"key": key, "title": specs[key].title, "cold_start_s": cold, "rss_bytes": rss,
                 "env": {k: v for k, v in specs[key].env.items() if k.startswith("TEXTCLS_")}}
            )  # fmt: skip
        runner = SignatureRunner(version_dir) if any(r.kind == "limit" for r in plan) else None
        for rep in range(args.reps):
            for row in plan:
                if row.kind == "limit":
                    assert runner is not None
                    result = runner.measure(test_texts, row.batch_size, args.limit_seconds)
                    limit_runs[row.key].append(result)
                    say(f"rep {rep + 1}/{args.reps} {row.key}: {result.texts_per_s:,.0f} texts/s")
                    continue
                assert row.server is not None
                server = servers[row.server]
                textcls = row.server in rows.TEXTCLS_SERVERS
                body = bodies[row.texts_per_request]
                loadgen.run_wrk(
                    server.classify_url, body, row.connections, args.warmup,
                    row.texts_per_request, server.pid, args.wrk_timeout,
                )  # fmt: skip
                before = service_metrics.scrape(server.base_url) if textcls else {}
                measured = loadgen.run_wrk(
                    server.classify_url, body, row.connections, args.duration,
                    row.texts_per_request, server.pid, args.wrk_timeout,
                )  # fmt: skip
                http_runs[row.key].append(measured)
                if textcls:
                    after = service_metrics.scrape(server.base_url)
                    service_runs[row.key].append(
                        service_metrics.window_stats(before, after, measured.wall_s)
                    )
                say(
                    f"rep {rep + 1}/{args.reps} {row.key}: {measured.requests_per_s:,.0f} req/s, "
                    f"{measured.texts_per_s:,.0f} texts/s, "
                    f"p99 {measured.wrk.latency_us['p99'] / 1000:.1f} ms, "
                    f"errors {measured.wrk.errors}"
                )
        say("stopping servers")

    results = {
        r.key: (
            rows.aggregate_limit(r, limit_runs[r.key])
            if r.kind == "limit"
            else rows.aggregate_http(r, http_runs[r.key], service_runs[r.key])
        )
        for r in plan
    }
    add_ratios(results)
    targets = evaluate_targets(results)
    import tensorflow as tf

    run_doc: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": time.perf_counter() - t0,
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "git_commit": _git_commit(),
        "plan": {
            "quick": args.quick, "duration_s": args.duration, "warmup_s": args.warmup,
            "reps": args.reps, "server_warmup_s": args.server_warmup,
            "limit_seconds": args.limit_seconds, "workers": args.workers,
            "textcls_env": _env_pairs(args.textcls_env), "wrk_timeout_s": args.wrk_timeout,
            "variant": _env_pairs(args.variant), "variant_workers": args.variant_workers,
            "variant_log_level": args.variant_log_level,
            "variant_checkout": str(args.variant_checkout) if args.variant_checkout else None,
            "rows": [r.key for r in plan],
        },
        "machine": {
            "cpus": cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "wrk": _wrk_version(), "loadavg_start": loadavg_start, "loadavg_end": _loadavg(),
        },
        "model": {
            "name": meta.name, "version": meta.version, "labels": len(meta.labels),
            "arch": meta.arch, "path": str(version_dir),
        },
        "servers": server_info,
        "notes": notes,
    }  # fmt: skip
    json_path, md_path, text = write_results(
        args.out, stamp, run_doc, list(results.values()), targets
    )
    print(text)
    say(f"wrote {json_path} and {md_path} in {run_doc['elapsed_s']:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except LoadgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ModelError, ServerError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
