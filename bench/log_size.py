"""Bytes per prediction-log row for each ``TEXTCLS_LOG_TEXT`` mode, on SQLite and PostgreSQL.

Rows like the server writes (BANKING77 test texts, a top-3 ranking, a 32-hex request id) are
inserted through the writer's own INSERT path into a fresh database per mode; the size is
then read from the database itself: SQLite's file after a WAL checkpoint, PostgreSQL's
``pg_total_relation_size`` (table, TOAST and every index) after a VACUUM. The size of the
empty, migrated table is subtracted, so the figure is what each further row costs.

    python -m bench.log_size [--rows 20000] [--postgres-url URL] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from sqlalchemy import Engine, text

from app.predlog.engine import create_db_engine
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade
from app.predlog.records import LogTextMode, PredictionRecord, to_row
from app.predlog.tables import HOLDS_TEXT
from bench import texts
from bench.postgres import DEFAULT_URL, URL_ENV, PostgresUnavailable, bench_schema
from bench.servers import REPO_ROOT

MODES: tuple[LogTextMode, ...] = get_args(LogTextMode)
BATCH = 500
RANKING = [("card_arrival", 0.81), ("lost_or_stolen_card", 0.11), ("card_linking", 0.04)]


def records(sample: list[str], n: int) -> list[PredictionRecord]:
    """``n`` answered predictions, one text each, cycling through ``sample``."""
    start = datetime.now(UTC)
    return [
        PredictionRecord(
            request_id=uuid.uuid4().hex,
            index=0,
            created_at=start + timedelta(milliseconds=i),
            client="chat",
            model="banking77",
            version=3,
            text=sample[i % len(sample)],
            label="card_arrival",
            confidence=0.81,
            fallback=i % 10 == 0,
            ranking=RANKING,
            latency_ms=4.2,
            batch_size=16,
        )  # fmt: skip
        for i in range(n)
    ]


def sqlite_bytes(engine: Engine) -> int:
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
        size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
    return int((pages - free) * size)


def postgres_bytes(engine: Engine) -> int:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM prediction_log"))
        return int(
            conn.execute(text("SELECT pg_total_relation_size('prediction_log')")).scalar_one()
        )


def _insert(engine: Engine, rows: list[PredictionRecord], mode: LogTextMode) -> None:
    converted = [to_row(r, mode) for r in rows]
    for start in range(0, len(converted), BATCH):
        with engine.begin() as conn:
            insert_rows(conn, converted[start : start + BATCH])


def measure(
    url: str, mode: LogTextMode, rows: list[PredictionRecord], size: Callable[[Engine], int]
) -> tuple[float, float]:
    """Bytes per row of ``rows`` logged in ``mode`` in the empty database at ``url``; then,
    once their texts are blanked (text retention), bytes per row of as many rows again."""
    engine = create_db_engine(url)
    try:
        upgrade(engine)
        empty = size(engine)
        _insert(engine, rows, mode)
        first = size(engine)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE prediction_log SET text = NULL, text_sha256 = NULL "
                    f"WHERE {HOLDS_TEXT}"  # as the pruner does
                )
            )
        blanked = size(engine)
        _insert(engine, records_like(rows), mode)
        return (first - empty) / len(rows), (size(engine) - blanked) / len(rows)
    finally:
        engine.dispose()


def records_like(rows: list[PredictionRecord]) -> list[PredictionRecord]:
    """The same predictions under new request ids."""
    return [
        PredictionRecord(
            **{**{f: getattr(r, f) for f in r.__slots__}, "request_id": uuid.uuid4().hex}
        )
        for r in rows
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.log_size", description=__doc__)
    p.add_argument("--rows", type=int, default=20_000, help="Rows per mode and backend.")
    p.add_argument("--data", type=Path, default=None, help="BANKING77 folder.")
    p.add_argument("--postgres-url", default=None, help=f"Default: ${URL_ENV} or {DEFAULT_URL}.")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = p.parse_args(argv)

    sample = texts.read_texts(texts.data_dir(args.data) / "test.csv")
    rows = records(sample, args.rows)
    mean_chars = sum(len(r.text) for r in rows) / len(rows)
    pg_url = args.postgres_url or os.environ.get(URL_ENV) or DEFAULT_URL
    result: dict[str, Any] = {
        "rows": args.rows,
        "mean_text_chars": round(mean_chars, 1),
        "bytes_per_row": {},
        "bytes_per_row_after_text_expiry": {},
    }

    def record(backend: str, mode: LogTextMode, url: str, size: Callable[[Engine], int]) -> None:
        first, after = measure(url, mode, rows, size)
        result["bytes_per_row"].setdefault(backend, {})[mode] = round(first, 1)
        result["bytes_per_row_after_text_expiry"].setdefault(backend, {})[mode] = round(after, 1)

    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            record("sqlite", mode, f"sqlite:///{Path(tmp) / f'{mode}.db'}", sqlite_bytes)
    try:
        for mode in MODES:
            with bench_schema(pg_url) as url:
                record("postgresql", mode, url, postgres_bytes)
    except PostgresUnavailable as exc:
        print(f"PostgreSQL left out: {exc}", file=sys.stderr)
    print(f"{args.rows} rows, BANKING77 texts of {mean_chars:.0f} characters on average")
    print("bytes per row; in brackets: per further row once earlier rows' texts are blanked")
    backends = list(result["bytes_per_row"])
    print(f"{'mode':<10}" + "".join(f"{b:>20}" for b in backends))
    for mode in MODES:
        cells = [
            f"{result['bytes_per_row'][b][mode]:.0f} "
            f"({result['bytes_per_row_after_text_expiry'][b][mode]:.0f})"
            for b in backends
        ]
        print(f"{mode:<10}" + "".join(f"{c:>20}" for c in cells))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "log_size.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
