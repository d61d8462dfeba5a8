"""``python -m bench.request_cost``: CPU per inference request inside the process, no sockets.

Drives an app's ASGI callable directly (the real app, model, batcher and log writer; no
uvicorn, no client) with N concurrent callers and prints the event-loop thread's CPU and the
whole process's CPU per request. Comparing ``noop`` with ``textcls`` isolates what textcls's
own request path costs; ``--route`` picks /classify (default) or V2 infer with JSON or
binary tensors (textcls apps only). ``--profile`` (needs ``pip install yappi``) adds the loop
thread's self time by package and function, on CPU clock so a busy machine does not skew it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import texts
from bench.baselines.shaping import MODEL_PATH_ENV
from bench.model import DEFAULT_MODEL_DIR, ensure_model

APPS = ("noop", "textcls_nolog", "textcls")
ROUTES = ("classify", "v2_json", "v2_binary")
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
Request = tuple[str, bytes, dict[str, str]]  # path, body, headers
JSON = {"content-type": "application/json"}


def build_app(which: str, version_dir: Path, work: Path) -> Any:
    if which == "noop":
        os.environ[MODEL_PATH_ENV] = str(version_dir)
        from bench.baselines.noop_app import create_app

        return create_app()
    from app.config import load_settings
    from app.main import create_app as create_textcls

    settings = load_settings(
        model_dir=version_dir.parent.parent,
        database_url=f"sqlite:///{work / 'request_cost.db'}",
        log_spill_path=work / "request_cost.spill.jsonl",
        log_predictions=which == "textcls",
        poll_interval_s=0,
    )
    return create_textcls(settings)


def requests_for(route: str, texts_: list[str]) -> list[Request]:
    """Single-text requests for ``route``, as bench.protocols sends them."""
    from bench.model import MODEL_NAME
    from bench.protocols import v2_binary_body, v2_json_body

    if route == "classify":
        return [("/classify", json.dumps(b).encode(), JSON) for b in texts.single_bodies(texts_)]
    path = f"/v2/models/{MODEL_NAME}/infer"
    if route == "v2_json":
        return [(path, v2_json_body(t), JSON) for t in texts_]
    out = []
    for t in texts_:
        body, n = v2_binary_body(t)
        headers = {"content-type": "application/octet-stream",
                   "inference-header-content-length": str(n)}  # fmt: skip
        out.append((path, body, headers))
    return out


async def call(
    app: App, method: str, path: str, body: bytes = b"", headers: dict[str, str] = JSON
) -> int:
    """One request through the ASGI app; returns its status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"bench"), *((k.encode(), v.encode()) for k, v in headers.items()),
                    (b"content-length", str(len(body)).encode())],
        "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def profile_table(n: int) -> str:
    import yappi

    main_id = next(t.id for t in yappi.get_thread_stats() if t.name == "_MainThread")
    packages: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for f in yappi.get_func_stats(filter={"ctx_id": main_id}):
        module = f.module.split("site-packages/")[-1]
        packages[module.split("/")[0] if "/" in module else module] += f.tsub
        functions[f"{module}:{f.lineno} {f.name}"] += f.tsub
        calls[f"{module}:{f.lineno} {f.name}"] += f.ncall
    total = sum(packages.values()) or 1.0
    out = [
        f"loop thread self time under yappi (the profiler inflates it): "
        f"{1e6 * total / n:.0f} us/request; Python calls per request: "
        f"{sum(calls.values()) / n:.1f}"
    ]
    out += [f"  {100 * v / total:5.1f}%  {k}" for k, v in packages.most_common(12)]
    out += ["top functions:"]
    out += [
        f"  {100 * v / total:5.1f}%  {calls[k] / n:5.1f} calls  {k}"
        for k, v in functions.most_common(30)
    ]
    return "\n".join(out)


async def measure(app: Any, which: str, requests: list[Request], n: int, concurrency: int,
                  profile: bool) -> str:  # fmt: skip
    async with app.router.lifespan_context(app):
        while which != "noop" and await call(app, "GET", "/readyz") != 200:
            await asyncio.sleep(0.1)

        async def caller(k: int) -> None:
            for i in range(k, n, concurrency):
                path, body, headers = requests[i % len(requests)]
                status = await call(app, "POST", path, body, headers)
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}")

        await asyncio.gather(*(caller(k) for k in range(concurrency)))  # warm-up
        if profile:
            import yappi

            yappi.set_clock_type("cpu")
            yappi.start()
        t0, loop0, proc0 = time.perf_counter(), time.thread_time(), time.process_time()
        await asyncio.gather(*(caller(k) for k in range(concurrency)))
        wall = time.perf_counter() - t0
        loop_cpu, proc_cpu = time.thread_time() - loop0, time.process_time() - proc0
        line = (
            f"{which} {requests[0][0]}: {n / wall:,.0f} requests/s; CPU per request: loop thread "
            f"{1e6 * loop_cpu / n:.0f} us, whole process {1e6 * proc_cpu / n:.0f} us"
        )
        if profile:
            yappi.stop()
            line += "\n" + profile_table(n)
        return line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.request_cost", description=__doc__)
    p.add_argument("apps", nargs="*", help="noop, textcls_nolog, textcls (default: all three)")
    p.add_argument("--route", choices=ROUTES, default="classify")
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--profile", action="store_true", help="yappi, CPU clock (pip install yappi)")
    p.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--data", type=Path, default=None)
    args = p.parse_args(argv)
    args.apps = args.apps or list(APPS)
    if unknown := set(args.apps) - set(APPS):
        p.error(f"unknown apps {sorted(unknown)}; choose from {', '.join(APPS)}")  # fmt: skip
    if args.route != "classify" and "noop" in args.apps:
        p.error("the noop app answers /classify only")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    data = texts.data_dir(args.data)
    version_dir = ensure_model(args.model_dir.resolve(), data)
    work = Path(__file__).resolve().parent / ".work"
    work.mkdir(exist_ok=True)
    requests = requests_for(args.route, texts.read_texts(data / "test.csv"))
    for which in args.apps:
        app = build_app(which, version_dir, work)
        print(
            asyncio.run(
                measure(app, which, requests, args.requests, args.concurrency, args.profile)
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
