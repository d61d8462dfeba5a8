"""The rows of a run: what each measures, and how repeated measurements become one row."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Literal

from bench.limit import LimitResult
from bench.loadgen import LoadResult

# Servers (see bench.__main__ for how each is started)
NOOP, KERAS_PREDICT, SIGNATURE = "noop", "keras_predict", "signature"
TEXTCLS, TEXTCLS_PG, TEXTCLS_NOLOG = "textcls_sqlite", "textcls_postgres", "textcls_nolog"
TEXTCLS_VARIANT = "textcls_variant"  # tuning: the default server with one change
TEXTCLS_SERVERS = (TEXTCLS, TEXTCLS_PG, TEXTCLS_NOLOG, TEXTCLS_VARIANT)

# Rows the ratios and targets refer to
LIMIT_256 = "limit_b256"
CEILING = "http_ceiling"
BASELINE_A = "baseline_a"
BASELINE_B = "baseline_b"
TEXTCLS_64 = "textcls_c64"
TEXTCLS_BATCH = "textcls_32texts_c16"
TEXTCLS_PG_64 = "textcls_pglog_c64"
TEXTCLS_NOLOG_64 = "textcls_nolog_c64"

COMPARE_CONNECTIONS = 64  # the ceiling and baseline B run where the main target is set
# model.predict takes ~0.2 s per call even alone (docs/results/speed.md, baseline A): at 64
# connections a request waits longer than a quick run lasts and wrk counts nothing, so
# baseline A runs at a concurrency it can serve.
BASELINE_A_CONNECTIONS = 8


@dataclass(frozen=True)
class RowSpec:
    """One row: an in-process limit at ``batch_size``, or wrk against ``server``."""

    key: str
    title: str
    kind: Literal["limit", "http"]
    server: str | None = None
    connections: int = 0
    texts_per_request: int = 1
    batch_size: int = 0


def limit_row(batch: int) -> RowSpec:
    return RowSpec(
        f"limit_b{batch}", f"limit: signature in-process, batch {batch}", "limit", batch_size=batch
    )


def textcls_row(connections: int) -> RowSpec:
    return RowSpec(
        f"textcls_c{connections}",
        f"textcls, 1 text/request, log SQLite, {connections} conn",
        "http",
        TEXTCLS,
        connections,
    )


def plan_rows(quick: bool, variant: bool = False) -> list[RowSpec]:
    """Every row of a run; ``quick`` keeps one textcls connection count (64) of the four.

    ``variant`` adds, after each default textcls row, the same row against the tuned server.
    """
    c, a = COMPARE_CONNECTIONS, BASELINE_A_CONNECTIONS
    rows = [limit_row(1), limit_row(32), limit_row(256)]
    rows += [
        RowSpec(CEILING, f"HTTP ceiling: FastAPI no-op, {c} conn", "http", NOOP, c),
        RowSpec(BASELINE_A, f"baseline A: Keras model.predict/request, {a} conn", "http",
                KERAS_PREDICT, a),
        RowSpec(BASELINE_B, f"baseline B: signature/request, {c} conn", "http", SIGNATURE, c),
    ]  # fmt: skip
    rows += [textcls_row(n) for n in ((64,) if quick else (1, 16, 64, 256))]
    rows += [
        RowSpec(TEXTCLS_BATCH, "textcls, 32 texts/request, log SQLite, 16 conn", "http", TEXTCLS,
                16, texts_per_request=32),
        RowSpec(TEXTCLS_PG_64, f"textcls, 1 text/request, log PostgreSQL, {c} conn", "http",
                TEXTCLS_PG, c),
        RowSpec(TEXTCLS_NOLOG_64, f"textcls, 1 text/request, log off, {c} conn", "http",
                TEXTCLS_NOLOG, c),
    ]  # fmt: skip
    if not variant:
        return rows
    out: list[RowSpec] = []
    for row in rows:
        out.append(row)
        if row.server == TEXTCLS:
            out.append(
                RowSpec(f"variant_{row.key}", f"variant: {row.title}", "http", TEXTCLS_VARIANT,
                        row.connections, row.texts_per_request)
            )  # fmt: skip
    return out


@dataclass
class RowResult:
    """A row's medians over its repetitions (errors are summed), and its ratios."""

    key: str
    title: str
    kind: str
    server: str | None
    connections: int
    texts_per_request: int
    reps: int
    requests_per_s: float
    texts_per_s: float
    texts_per_s_min: float
    texts_per_s_max: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: int
    requests: int
    client_cpu: float | None  # wrk's CPU, in cores (CPU seconds per second)
    server_cpu: float | None  # the server's (or the in-process limit's)
    other_cpu: float | None  # the rest of the machine meanwhile: other people's work
    cpu_ms_per_text: float | None  # server (or limit process) CPU per text answered: robust
    # to a busy machine, where throughput mostly shows the CPU share a process was given
    service: dict[str, float] = field(default_factory=dict)  # textcls /metrics, medians
    ratios: dict[str, float] = field(default_factory=dict)
    raw: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def aggregate_http(
    spec: RowSpec, runs: list[LoadResult], service: list[dict[str, float]] | None = None
) -> RowResult:
    """Medians of wrk runs; latencies are medians of each run's percentile. ``service``: what
    the server's own /metrics said in each run (textcls only)."""
    names = sorted({k for s in service or [] for k in s})
    tps = [r.texts_per_s for r in runs]
    walls = [r.wall_s or 1.0 for r in runs]
    return RowResult(
        key=spec.key,
        title=spec.title,
        kind=spec.kind,
        server=spec.server,
        connections=spec.connections,
        texts_per_request=spec.texts_per_request,
        reps=len(runs),
        requests_per_s=_median([r.requests_per_s for r in runs]),
        texts_per_s=_median(tps),
        texts_per_s_min=min(tps, default=0.0),
        texts_per_s_max=max(tps, default=0.0),
        p50_ms=_median([r.wrk.latency_us["p50"] / 1000 for r in runs]),
        p95_ms=_median([r.wrk.latency_us["p95"] / 1000 for r in runs]),
        p99_ms=_median([r.wrk.latency_us["p99"] / 1000 for r in runs]),
        errors=sum(r.wrk.errors for r in runs),
        requests=sum(r.wrk.requests for r in runs),
        client_cpu=_median([r.client_cpu_s / w for r, w in zip(runs, walls, strict=True)]),
        server_cpu=_median([r.server_cpu_s / w for r, w in zip(runs, walls, strict=True)]),
        other_cpu=_median(
            [
                max(r.machine_busy_cpu_s - r.client_cpu_s - r.server_cpu_s, 0.0) / w
                for r, w in zip(runs, walls, strict=True)
            ]
        ),
        cpu_ms_per_text=_median(
            [
                1000 * r.server_cpu_s / (r.wrk.ok_requests * r.texts_per_request)
                for r in runs
                if r.wrk.ok_requests
            ]
        ),  # fmt: skip
        service={n: _median([s[n] for s in service or [] if n in s]) for n in names},
        raw=[r.as_dict() for r in runs],
    )


def aggregate_limit(spec: RowSpec, runs: list[LimitResult]) -> RowResult:
    """Medians of in-process runs; a 'request' is one signature call."""
    tps = [r.texts_per_s for r in runs]
    return RowResult(
        key=spec.key,
        title=spec.title,
        kind=spec.kind,
        server=None,
        connections=0,
        texts_per_request=spec.batch_size,
        reps=len(runs),
        requests_per_s=_median([r.calls_per_s for r in runs]),
        texts_per_s=_median(tps),
        texts_per_s_min=min(tps, default=0.0),
        texts_per_s_max=max(tps, default=0.0),
        p50_ms=_median([r.call_p50_ms for r in runs]),
        p95_ms=None,
        p99_ms=_median([r.call_p99_ms for r in runs]),
        errors=0,
        requests=sum(r.calls for r in runs),
        client_cpu=None,
        server_cpu=_median([r.cpu_s / r.wall_s for r in runs if r.wall_s]),
        other_cpu=_median(
            [max(r.machine_busy_cpu_s - r.cpu_s, 0.0) / r.wall_s for r in runs if r.wall_s]
        ),
        cpu_ms_per_text=_median([1000 * r.cpu_s / r.texts for r in runs if r.texts]),
        raw=[r.as_dict() for r in runs],
    )
