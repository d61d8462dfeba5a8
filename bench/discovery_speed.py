"""Time `textcls intents discover` on N logged texts (BANKING77, repeated to N with a suffix).

Usage: python -m bench.discovery_speed [--texts 20000] [--space auto tfidf]. Fills a fresh
SQLite prediction log (30% of the rows fell back), then runs the command as a user does, once
per space named, and prints each wall time (no model: the known labels' texts come from the
log, 20 of each).
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from app.predlog.engine import create_db_engine
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade

DATA = Path("/work/shared/data/banking77")


def fill(url: str, n: int) -> None:
    rows = []
    for name in ("train.csv", "test.csv"):
        with open(DATA / name, newline="", encoding="utf-8") as f:
            rows += [(r["text"], r["category"]) for r in csv.DictReader(f)]
    rng = random.Random(0)
    engine = create_db_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    batch = []
    for i in range(n):
        text, label = rows[i % len(rows)]
        if i >= len(rows):
            text = f"{text} ({i // len(rows)})"
        fell_back = rng.random() < 0.3
        batch.append(
            {
                "request_id": f"r{i}",
                "index": 0,
                "created_at": now,
                "client": None,
                "model": "banking77",
                "version": 1,
                "text": text,
                "text_sha256": None,
                "label": label,
                "confidence": 0.3 if fell_back else 0.9,
                "fallback": fell_back,
                "ranking": [],
                "latency_ms": 1.0,
                "batch_size": 1,
                "role": "primary",
            }
        )
    with engine.begin() as conn:
        for k in range(0, n, 2000):
            insert_rows(conn, batch[k : k + 2000])
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=20_000)
    ap.add_argument("--space", nargs="+", default=["auto", "tfidf"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/log.db"
        fill(url, args.texts)
        for space in args.space:
            run(url, tmp, args.texts, space)


def discover_argv(url: str, model_dir: str, space: str, out: str) -> list[str]:
    """``textcls intents discover`` on the logged banking77 model, as a user types it."""
    return [
        str(Path(sys.executable).with_name("textcls")),
        "intents",
        "discover",
        "banking77",
        "--database-url",
        url,
        "--model-dir",
        model_dir,
        "--space",
        space,
        "--out",
        out,
    ]


def run(url: str, tmp: str, n: int, space: str) -> None:
    """Run the command as a user does and print its first line and wall time."""
    command = discover_argv(url, tmp, space, f"{tmp}/out.json")
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    print(done.stdout.splitlines()[0] if done.stdout else done.stderr[-2000:])
    print(f"{n} logged texts, --space {space}: {seconds:.1f} s wall", flush=True)


if __name__ == "__main__":
    main()
