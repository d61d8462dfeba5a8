"""``python -m bench.encoder NGRAM_VERSION ENCODER_VERSION...``: encoder models beside ngram.

For each model (keyed by architecture and encoders: ngram, encoder-use, encoder-e5,
encoder-use+e5): in-process texts/s of the signature at batch 1/32/256 (bench.limit), then
``textcls serve`` on a repository holding only that model: cold start, RSS after warm-up, and
single texts at 64 connections (wrk) with p50/p99. Rows interleave the models over ``--reps``
so that machine noise hits all; a second model of the same key (one model exported by two
builds of the code, old and new side by side, or one model served two ways with
``--serve-env``) is keyed ``<key>-<its place>``. Given an ngram
model and an e5 one, the "ngram beside busy e5" rows follow (bench.beside; ``--no-beside``
skips them). The result goes to
bench/results/encoder-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import loadgen, texts
from bench.beside import beside_rows
from bench.limit import SignatureRunner
from bench.servers import REPO_ROOT, RunningServer, ServerSpec, stop_all
from training.artifact import read_metadata

CONNECTIONS = 64
BATCHES = (1, 32, 256)


def _serve_spec(
    key: str, model_dir: Path, work: Path, env: dict[str, str] | None = None
) -> ServerSpec:
    argv = [
        sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", "{port}",
        "--model-dir", str(model_dir),
    ]  # fmt: skip
    env = {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TEXTCLS_LOG_PREDICTIONS": "false",
        "TEXTCLS_DATABASE_URL": f"sqlite:///{work / 'unused.db'}",
        "TEXTCLS_LOG_SPILL_PATH": str(work / f"{key}.spill.jsonl"),
        **(env or {}),
    }
    return ServerSpec(key, f"textcls serve ({key})", argv, env)


def _repo_of(version_dirs: list[Path], work: Path, key: str) -> Path:
    """A model repository holding only ``version_dirs`` (symlinks): the models the server loads."""
    repo = work / f"models-{key}"
    for version_dir in version_dirs:
        (repo / version_dir.parent.name).mkdir(parents=True)
        (repo / version_dir.parent.name / version_dir.name).symlink_to(version_dir.resolve())
    return repo


def _key(version_dir: Path) -> str:
    """ngram, cnn ... or encoder-<its encoders joined by +> (encoder-use, encoder-use+e5)."""
    meta = read_metadata(version_dir)
    if meta.arch != "encoder":
        return meta.arch
    encoders = meta.params.get("encoders") or ["use"]
    if isinstance(encoders, str):
        encoders = encoders.split(",")
    return "encoder-" + "+".join(encoders)


def _beside(
    models: dict[str, dict[str, Any]],
    work: Path,
    test_texts: list[str],
    env: dict[str, str],
    **run: Any,
) -> Any:
    """bench.beside's rows for the ngram model and the first model with e5, if both are here;
    ``env``: for both servers (``--beside-env``)."""
    e5 = next((k for k in models if k.startswith("encoder-") and "e5" in k), None)
    if "ngram" not in models or e5 is None:
        return None
    dirs = {
        role: Path(models[k]["version_dir"]) for role, k in (("cheap", "ngram"), ("expensive", e5))
    }
    names = {role: d.parent.name for role, d in dirs.items()}
    repo = _repo_of(list(dirs.values()), work, "beside")
    one_class = {"TEXTCLS_MODEL_BATCHING": json.dumps({names["expensive"]: {"expensive": False}})}
    specs = {
        "cheap first": _serve_spec("beside-cheap-first", repo, work, env),
        "one class": _serve_spec("beside-one-class", repo, work, env | one_class),
    }
    return {"expensive_key": e5, **beside_rows(specs, names, test_texts, work, **run)}


def _model_rows(
    models: dict[str, dict[str, Any]], work: Path, test_texts: list[str], args: Any
) -> None:
    """Each model alone: cold start, RSS, in-process limits and /classify, reps interleaved."""
    bodies = loadgen.write_bodies(work / "single.jsonl", texts.single_bodies(test_texts))
    runners = {k: SignatureRunner(Path(m["version_dir"])) for k, m in models.items()}
    servers: list[RunningServer] = []
    try:
        started: dict[str, RunningServer] = {}
        for key, m in models.items():
            repo = _repo_of([Path(m["version_dir"])], work, key)
            server = RunningServer(_serve_spec(key, repo, work, m["env"]), work)
            servers.append(server)
            m["cold_start_s"] = server.start()
            loadgen.run_wrk(server.classify_url, bodies, CONNECTIONS, 3.0, 1, server.pid)
            m["rss_mib"] = server.rss_bytes() / 2**20
            started[key] = server
            print(f"{key}: ready in {m['cold_start_s']:.1f} s, RSS {m['rss_mib']:.0f} MiB")
        for rep in range(args.reps):
            for key, m in models.items():
                for b in BATCHES:
                    r = runners[key].measure(test_texts, b, args.limit_seconds)
                    m["limit"].setdefault(str(b), []).append(r.texts / r.wall_s)
                server = started[key]
                res = loadgen.run_wrk(
                    server.classify_url, bodies, CONNECTIONS, args.duration, 1, server.pid
                )
                m["http"].append(
                    {
                        "texts_per_s": res.texts_per_s,
                        "p50_ms": res.wrk.latency_us["p50"] / 1000,
                        "p99_ms": res.wrk.latency_us["p99"] / 1000,
                        "errors": res.wrk.errors,
                        "server_cpu_ms_per_text": _cpu_ms_per_text(res),
                    }
                )
                limits = ", ".join(f"b{b} {m['limit'][str(b)][-1]:,.0f}" for b in BATCHES)
                print(f"rep {rep + 1} {key}: {limits} texts/s; /classify {res.texts_per_s:,.0f}/s "
                      f"p99 {res.wrk.latency_us['p99'] / 1000:.1f} ms", flush=True)  # fmt: skip
    finally:
        stop_all(servers)


def _cpu_ms_per_text(res: loadgen.LoadResult) -> float:
    """The server's CPU per answered text: its cost whatever CPU share it got meanwhile."""
    answered = res.wrk.ok_requests * res.texts_per_request
    return res.server_cpu_s * 1000 / answered if answered else float("nan")


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "limit_texts_per_s": {b: statistics.median(v) for b, v in m["limit"].items()},
        "classify_64conn_texts_per_s": statistics.median(h["texts_per_s"] for h in m["http"]),
        "classify_64conn_p99_ms": statistics.median(h["p99_ms"] for h in m["http"]),
        "classify_server_cpu_ms_per_text": statistics.median(
            h["server_cpu_ms_per_text"] for h in m["http"]
        ),
        "rss_mib": m["rss_mib"],
        "cold_start_s": m["cold_start_s"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.encoder", description=__doc__)
    p.add_argument("versions", nargs="+", type=Path, help="Version folders (e.g. ngram, encoder).")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--limit-seconds", type=float, default=3.0)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    p.add_argument("--no-beside", action="store_true", help="Skip the ngram-beside-e5 rows.")
    p.add_argument("--no-models", action="store_true", help="Only the ngram-beside-e5 rows.")
    p.add_argument(
        "--serve-env",
        nargs=2,
        action="append",
        default=[],
        metavar=("PLACE", "NAME=VALUE"),
        help="An environment variable for the server of the PLACE-th version (1-based): one "
        "model listed twice, served two ways side by side.",
    )
    p.add_argument(
        "--beside-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="An environment variable for both servers of the beside rows.",
    )
    args = p.parse_args(argv)
    envs: dict[int, dict[str, str]] = {}
    for place, assignment in args.serve_env:
        name, _, value = assignment.partition("=")
        envs.setdefault(int(place), {})[name] = value
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    work = REPO_ROOT / "bench" / ".work" / f"encoder-{stamp}"
    work.mkdir(parents=True)
    test_texts = texts.read_texts(texts.data_dir(args.data) / "test.csv")
    models: dict[str, dict[str, Any]] = {}
    for place, v in enumerate(args.versions, start=1):
        key = _key(v)
        # One model twice: two builds of it, or two --serve-env settings.
        key = key if key not in models else f"{key}-{len(models) + 1}"
        models[key] = {
            "version_dir": str(v),
            "env": envs.get(place, {}),
            "arch": read_metadata(v).arch,
            "limit": {},
            "http": [],
        }

    if not args.no_models:
        _model_rows(models, work, test_texts, args)
    beside = None
    if not args.no_beside:
        beside_env = dict(a.partition("=")[::2] for a in args.beside_env)
        beside = _beside(
            models, work, test_texts, beside_env, reps=args.reps, duration_s=args.duration
        )
    summary = {k: _summary(m) for k, m in models.items() if m["http"]}
    if beside is not None:
        summary["ngram beside busy e5"] = beside["summary"]
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"encoder-{stamp}.json"
    out.write_text(
        json.dumps({"summary": summary, "runs": models, "beside": beside}, indent=2) + "\n"
    )
    print(json.dumps(summary, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
