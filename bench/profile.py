"""``python -m bench.profile``: load one server with wrk while py-spy samples it, then summarise.

Writes the raw (collapsed) stacks under bench/.work/profile-<time>/ and prints the
functions with the most samples (self and inclusive) and the samples per thread, which is the
evidence for where a row's time goes.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from bench import loadgen, procstat, texts
from bench.__main__ import BATCH_TEXTS, _env_pairs, server_specs
from bench.model import DEFAULT_MODEL_DIR, ensure_model
from bench.servers import REPO_ROOT, RunningServer

PY_SPY_HINT = "py-spy is not installed: .venv/bin/pip install py-spy (it needs root or ptrace)"


def summarise(raw: Path, top: int = 25, thread: str = "") -> str:
    """Top functions by self and inclusive samples, and samples per thread, from py-spy raw;
    ``thread``: count only stacks of threads whose name contains it."""
    self_n: collections.Counter[str] = collections.Counter()
    incl_n: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if thread not in frames[0]:
            continue
        total += n
        threads[frames[0]] += n
        self_n[frames[-1]] += n
        for f in set(frames[1:]):
            incl_n[f] += n
    out = [f"{total} samples"]
    for title, counter in (("thread", threads), ("self", self_n), ("inclusive", incl_n)):
        out.append(f"\n-- by {title} --")
        for name, n in counter.most_common(top):
            out.append(f"{100 * n / max(total, 1):5.1f}%  {name}")
    return "\n".join(out)


def thread_table(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    raw: Path,
    seconds: float,
) -> str:
    """CPU each thread used while py-spy sampled (exact, from /proc), Python names added."""
    names: dict[int, str] = {}
    for line in raw.read_text().splitlines():
        head = line.split(";", 1)[0]  # "thread (1234): MainThread"
        if head.startswith("thread (") and "):" in head:
            tid_text, _, name = head[len("thread (") :].partition("): ")
            if tid_text.isdigit():
                names[int(tid_text)] = name
    used = sorted(
        ((a[1] - before.get(tid, (a[0], 0.0))[1], tid, a[0]) for tid, a in after.items()),
        reverse=True,
    )
    total = sum(u for u, _, _ in used) or 1.0
    out = [f"-- CPU by thread over {seconds:.0f} s (from /proc; {total:.2f} CPU s in all) --"]
    for secs, tid, comm in used:
        if secs <= 0:
            continue
        out.append(f"{100 * secs / total:5.1f}%  {secs:6.2f} s  {tid}  {names.get(tid, comm)}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("--server", default="textcls_sqlite", help="Server key (see bench.rows).")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--texts-per-request", type=int, default=1, choices=(1, BATCH_TEXTS))
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--native", action="store_true", help="py-spy --native (C/C++ frames too).")
    p.add_argument("--idle", action="store_true", help="Include idle (waiting) threads.")
    p.add_argument("--gil", action="store_true", help="Only samples holding the GIL.")
    p.add_argument("--thread", default="", help="Summarise only threads named like this.")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--textcls-env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--postgres-url", default=None)
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument(
        "--variant-checkout", type=Path, default=None,
        help="Another checkout (e.g. the previous code): --server textcls_variant profiles it.",
    )  # fmt: skip
    args = p.parse_args(argv)
    # The variant server is the default one (log level info) run from --variant-checkout.
    args.variant, args.variant_workers, args.variant_model_dir = [], None, None
    args.variant_log_level = "info" if args.variant_checkout else "warning"
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print(PY_SPY_HINT, file=sys.stderr)
        return 2
    work = REPO_ROOT / "bench" / ".work" / f"profile-{datetime.now(UTC):%Y-%m-%dT%H-%M-%S.%fZ}"
    work.mkdir(parents=True)
    data = texts.data_dir(None)
    version_dir = ensure_model(args.model_dir.resolve(), data)
    sample = texts.read_texts(data / "test.csv")
    bodies = loadgen.write_bodies(
        work / "bodies.jsonl",
        texts.single_bodies(sample)
        if args.texts_per_request == 1
        else texts.batch_bodies(sample, BATCH_TEXTS),
    )
    _env_pairs(args.textcls_env)
    spec = server_specs(args, version_dir, work, args.postgres_url)[args.server]
    with RunningServer(spec, work) as server:
        loadgen.run_wrk(server.classify_url, bodies, args.connections, 3, args.texts_per_request,
                        server.pid)  # fmt: skip
        raw = work / "stacks.txt"
        cmd = [spy, "record", "--pid", str(server.pid), "--duration", str(int(args.duration)),
               "--rate", "200", "--format", "raw", "--output", str(raw), "--threads",
               "--nonblocking"]  # fmt: skip
        cmd += ["--native"] * args.native + ["--idle"] * args.idle + ["--gil"] * args.gil
        result: dict[str, loadgen.LoadResult] = {}

        def load() -> None:
            result["r"] = loadgen.run_wrk(
                server.classify_url, bodies, args.connections, args.duration + 2,
                args.texts_per_request, server.pid,
            )  # fmt: skip

        t = threading.Thread(target=load)
        t.start()
        threads_before = procstat.thread_cpu_seconds(server.pid)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        threads_after = procstat.thread_cpu_seconds(server.pid)
        t.join()
    r = result["r"]
    print(f"{args.server}: {r.requests_per_s:,.0f} req/s, {r.texts_per_s:,.0f} texts/s, "
          f"p99 {r.wrk.latency_us['p99'] / 1000:.1f} ms, server CPU "
          f"{r.server_cpu_s / r.wall_s:.2f} cores, machine {r.machine_busy_cpu_s / r.wall_s:.2f}"
          f" cores, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(thread_table(threads_before, threads_after, raw, args.duration))
    print(summarise(raw, args.top, args.thread))
    print(f"\nstacks: {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
