"""Request bodies from BANKING77's test texts, so the batcher sees distinct texts."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from bench.servers import REPO_ROOT

DATA_ENV = "TEXTCLS_BENCH_DATA"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "banking77"
LABEL_COLUMN = "category"


def data_dir(flag: Path | None = None) -> Path:
    """BANKING77's folder: the flag, else ``TEXTCLS_BENCH_DATA``, else ../shared/data/banking77."""
    if flag is not None:
        return flag
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else DEFAULT_DATA_DIR


def read_texts(path: Path, column: str = "text") -> list[str]:
    """The non-empty texts of a CSV file's ``column``, in file order."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise ValueError(f"{path}: no column {column!r} (columns: {reader.fieldnames})")
        return [row[column] for row in reader if row[column].strip()]


def single_bodies(texts: list[str]) -> list[dict[str, object]]:
    return [{"text": t} for t in texts]


def batch_bodies(texts: list[str], per_request: int) -> list[dict[str, object]]:
    """Consecutive, non-overlapping groups of ``per_request`` texts (the tail is dropped)."""
    if len(texts) < per_request:
        raise ValueError(f"need at least {per_request} texts, have {len(texts)}")
    return [
        {"texts": texts[i : i + per_request]}
        for i in range(0, len(texts) - per_request + 1, per_request)
    ]


def text_batches(texts: list[str], size: int) -> list[list[str]]:
    """Batches of ``size`` texts cycling through ``texts`` (for the in-process limit)."""
    n = max(len(texts) // size, 1)
    return [[texts[(i * size + j) % len(texts)] for j in range(size)] for i in range(n)]
