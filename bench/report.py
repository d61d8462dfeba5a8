"""Ratios between rows, the targets they are held to, and the JSON + markdown of a run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.rows import (
    BASELINE_B,
    CEILING,
    LIMIT_256,
    TEXTCLS_64,
    TEXTCLS_BATCH,
    TEXTCLS_NOLOG_64,
    TEXTCLS_PG_64,
    TEXTCLS_SERVERS,
    RowResult,
)

VARIANT_PREFIX = "variant_"
LOG_ROWS = (TEXTCLS_64, TEXTCLS_PG_64)


@dataclass(frozen=True)
class Target:
    """One serving target: the measured value, the goal, and whether it is met."""

    name: str
    row: str
    measured: float | None
    goal: str
    met: bool | None  # None: a row it needs was not measured
    per_cpu: float | None = None  # the same ratio on texts per server CPU-second


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _per_cpu(row: RowResult, ref: RowResult) -> float | None:
    """Texts per CPU-second of ``row`` over ``ref``'s: the ratio if both had the same CPU."""
    if not row.cpu_ms_per_text or not ref.cpu_ms_per_text:
        return None
    return ref.cpu_ms_per_text / row.cpu_ms_per_text


def add_ratios(rows: dict[str, RowResult]) -> None:
    """Fill each row's ``ratios``: vs the HTTP ceiling, baseline B, the limit at batch 256,
    and (log rows) vs the same service with the log off. All on texts/s; each also as
    ``<name>_per_cpu``, on texts per CPU-second of the server (or the limit's process), which
    a machine shared with other work distorts far less than throughput."""
    ceiling, base_b = rows.get(CEILING), rows.get(BASELINE_B)
    limit, log_off = rows.get(LIMIT_256), rows.get(TEXTCLS_NOLOG_64)
    for row in rows.values():
        refs: dict[str, RowResult] = {}
        if ceiling and row.kind == "http" and row.texts_per_request == 1:
            refs["vs_http_ceiling"] = ceiling
        if base_b and row.kind == "http":
            refs["vs_baseline_b"] = base_b
        if limit:
            refs["vs_limit_b256"] = limit
        if log_off and row.key in LOG_ROWS:
            refs["log_on_vs_off"] = log_off
        default = rows.get(row.key.removeprefix(VARIANT_PREFIX))
        if row.key.startswith(VARIANT_PREFIX) and default:
            refs["variant_vs_default"] = default
        found: dict[str, float | None] = {}
        for name, ref in refs.items():
            found[name] = _ratio(row.texts_per_s, ref.texts_per_s)
            found[name + "_per_cpu"] = _per_cpu(row, ref)
        row.ratios = {k: v for k, v in found.items() if v is not None}


def _at_least(name: str, row: RowResult | None, ratio: str, goal: float, text: str) -> Target:
    value = row.ratios.get(ratio) if row else None
    key = row.key if row else ""
    per_cpu = row.ratios.get(ratio + "_per_cpu") if row else None
    return Target(name, key, value, text, None if value is None else value >= goal, per_cpu)


def evaluate_targets(rows: dict[str, RowResult]) -> list[Target]:
    """The serving targets (docs/results/speed.md); call ``add_ratios`` first."""
    main, batch = rows.get(TEXTCLS_64), rows.get(TEXTCLS_BATCH)
    p99 = main.p99_ms if main else None
    targets = [
        _at_least("1 text, 64 conn: share of the HTTP ceiling", main, "vs_http_ceiling", 0.6,
                  ">= 0.60"),
        _at_least("1 text, 64 conn: times baseline B", main, "vs_baseline_b", 4.0, ">= 4.0"),
        Target("1 text, 64 conn: p99 latency (ms)", TEXTCLS_64, p99, "<= 50",
               None if p99 is None else p99 <= 50.0),
        _at_least("32 texts/request, 16 conn: share of the limit at batch 256", batch,
                  "vs_limit_b256", 0.7, ">= 0.70"),
        _at_least("log on (SQLite) vs off", main, "log_on_vs_off", 0.9, ">= 0.90"),
        _at_least("log on (PostgreSQL) vs off", rows.get(TEXTCLS_PG_64), "log_on_vs_off", 0.9,
                  ">= 0.90"),
    ]  # fmt: skip
    textcls_rows = [r for r in rows.values() if r.server in TEXTCLS_SERVERS]
    errors = sum(r.errors for r in textcls_rows)
    bad = ",".join(r.key for r in textcls_rows if r.errors)
    targets.append(
        Target("errors in every textcls row", bad or "all", float(errors) if textcls_rows else None,
               "== 0", (errors == 0) if textcls_rows else None)
    )  # fmt: skip
    return targets


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _cpu(row: RowResult) -> str:
    parts = [row.client_cpu, row.server_cpu, row.other_cpu]
    return " / ".join("–" if v is None else f"{v:.2f}" for v in parts)


def markdown(run: dict[str, Any], rows: list[RowResult], targets: list[Target]) -> str:
    """The run as a markdown table with its targets and server start-up figures."""
    plan = run["plan"]
    lines = [
        f"### textcls benchmark, {run['started_at']} ({'quick' if plan['quick'] else 'full'} run)",
        "",
        f"Model `{run['model']['name']}` v{run['model']['version']} ({run['model']['labels']} "
        f"labels, arch `{run['model']['arch']}`); {run['machine']['cpus']} CPUs shared with other "
        f"work (load average {run['machine']['loadavg_start']} at start); wrk: 1 thread; each "
        f"row the median of {plan['reps']} x {plan['duration_s']} s, rows interleaved.",
        "",
        "| row | req/s | texts/s | p50 ms | p95 ms | p99 ms | errors | x ceiling | x B "
        "| x limit@256 | log on/off (variant/default) | server CPU ms/text "
        "| CPU cores wrk / server / other |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.title} | {_num(r.requests_per_s)} | {_num(r.texts_per_s)} "
            f"| {_num(r.p50_ms, 1)} | {_num(r.p95_ms, 1)} | {_num(r.p99_ms, 1)} | {r.errors} "
            f"| {_num(r.ratios.get('vs_http_ceiling'), 2)} "
            f"| {_num(r.ratios.get('vs_baseline_b'), 1)} "
            f"| {_num(r.ratios.get('vs_limit_b256'), 2)} "
            f"| {_num(r.ratios.get('log_on_vs_off', r.ratios.get('variant_vs_default')), 2)} "
            f"| {_num(r.cpu_ms_per_text, 3)} "
            f"| {_cpu(r)} |"
        )
    served = [r for r in rows if r.service]
    if served:
        lines += [
            "",
            "| textcls row (from its /metrics) | texts per model call | model calls/s "
            "| model call ms | queue wait ms |",
            "|---|--:|--:|--:|--:|",
        ]
        for r in served:
            s = r.service
            lines.append(
                f"| {r.title} | {_num(s.get('mean_batch_texts'), 1)} "
                f"| {_num(s.get('model_calls_per_s'))} | {_num(s.get('mean_model_call_ms'), 2)} "
                f"| {_num(s.get('mean_queue_wait_ms'), 2)} |"
            )
    lines += [
        "",
        "| target | measured | goal | met | same ratio per server CPU-second |",
        "|---|--:|--:|---|--:|",
    ]
    for t in targets:
        met = "not measured" if t.met is None else ("**met**" if t.met else "**missed**")
        lines.append(
            f"| {t.name} | {_num(t.measured, 2)} | {t.goal} | {met} | {_num(t.per_cpu, 2)} |"
        )
    lines += [
        "",
        "| server | cold start s (spawn to /readyz 200) | RSS after warm-up MiB |",
        "|---|--:|--:|",
    ]
    for s in run["servers"]:
        lines.append(
            f"| {s['title']} | {_num(s['cold_start_s'], 1)} "
            f"| {_num((s['rss_bytes'] or 0) / 2**20 if s['rss_bytes'] else None)} |"
        )
    if run.get("notes"):
        lines += [""] + [f"- {n}" for n in run["notes"]]
    return "\n".join(lines) + "\n"


def write_results(
    out_dir: Path, stem: str, run: dict[str, Any], rows: list[RowResult], targets: list[Target]
) -> tuple[Path, Path, str]:
    """``<stem>.json`` (everything, raw runs included) and ``<stem>.md``; returns the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {**run, "rows": [r.as_dict() for r in rows], "targets": [asdict(t) for t in targets]}
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(json_path)
    text = markdown(run, rows, targets)
    md_path.write_text(text)
    return json_path, md_path, text
