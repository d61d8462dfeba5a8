"""BANKING77 figures of the support loop: planted intent discovery and drift.

Trains a model on BANKING77's training file without 5 of its labels, then:
- discovery: logs a mix of test texts in which those 5 labels make about a third (each
  prediction's fallback as the service decides it), runs ``textcls intents discover`` on the
  log, and reports each held-out label's best group (purity >= 0.8) and the share of its
  texts that group holds;
- drift: feeds the service's drift window (app.plane.drift) with 1,000 test texts of the known
  labels, then with 1,000 texts half from Chinese takeaway reviews, and reports each signal.

Usage: python -m bench.support_loop [--space auto|tfidf] [--models DIR]
[--out bench/results/support-loop.json]. ``--models``: keep the trained model there and reuse
it on the next run (the training takes minutes); default: a temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.plane.drift import DriftWindow
from app.plane.ranking import descending_order, rank
from app.predlog.engine import create_db_engine
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade
from bench.discovery_speed import discover_argv
from training.artifact import read_metadata, versions
from training.config import TrainConfig
from training.scoring import SavedClassifier
from training.train import train

DATA = Path("/work/shared/data/banking77")
ZH = Path("/work/shared/data/zh_reviews/waimai_test.csv")
HELD_OUT = (
    "card_swallowed",
    "lost_or_stolen_phone",
    "exchange_rate",
    "getting_virtual_card",
    "terminate_account",
)


def _read(path: Path, text: str = "text", label: str = "category") -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(r[text], r.get(label, "")) for r in csv.DictReader(f)]


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def _predict(version: Path, texts: list[str]) -> list[Any]:
    model = SavedClassifier(version)
    probs = model.predict(texts)
    threshold = model.metadata.fallback.threshold
    return rank(
        probs, descending_order(probs), model.labels, top_k=3, threshold=threshold, margin=0.0
    )


def discovery(version: Path, test: list[tuple[str, str]], root: Path, space: str) -> dict[str, Any]:
    new = [r for r in test if r[1] in HELD_OUT]
    known = [r for r in test if r[1] not in HELD_OUT]
    mix = new + random.Random(0).sample(known, 2 * len(new))
    preds = _predict(version, [t for t, _ in mix])
    url = f"sqlite:///{root}/log.db"
    engine = create_db_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    rows = [
        {
            "request_id": f"r{i}",
            "index": 0,
            "created_at": now,
            "client": None,
            "model": "banking77",
            "version": 1,
            "text": t,
            "text_sha256": None,
            "label": p.label,
            "confidence": p.confidence,
            "fallback": p.fallback,
            "ranking": [{"label": a, "confidence": b} for a, b in p.ranking],
            "latency_ms": 1.0,
            "batch_size": 1,
            "role": "primary",
        }
        for i, ((t, _), p) in enumerate(zip(mix, preds, strict=True))
    ]
    with engine.begin() as conn:
        insert_rows(conn, rows)
    engine.dispose()
    out = root / "clusters.json"
    started = time.monotonic()
    subprocess.run(
        [*discover_argv(url, str(version.parent.parent), space, str(out)), "--no-save"],
        check=True,
    )
    seconds = time.monotonic() - started
    body = json.loads(out.read_text())
    truth, total = dict(mix), Counter(lab for _, lab in mix)
    found = {}
    for label in HELD_OUT:
        best = (0.0, 0.0, 0)
        for c in body["clusters"]:
            hits = sum(truth[t] == label for t in c["texts"])
            if hits / c["size"] >= 0.8:
                best = max(best, (hits / total[label], hits / c["size"], c["size"]))
        found[label] = {
            "texts": total[label],
            "recall": round(best[0], 3),
            "purity": round(best[1], 3),
            "group_size": best[2],
        }
    return {
        "space": body["space"],
        "mix": len(mix),
        "new_share": round(len(new) / len(mix), 3),
        "fell_back": sum(p.fallback for p in preds),
        "groups": len(body["clusters"]),
        "held_out": found,
        "seconds": round(seconds, 1),
    }


def drift(version: Path, test: list[tuple[str, str]]) -> dict[str, Any]:
    meta = read_metadata(version)
    assert meta.reference is not None
    known = [t for t, lab in test if lab not in HELD_OUT]
    rng = random.Random(1)
    calm = rng.sample(known, 1000)
    zh = [t for t, _ in _read(ZH, label="label")]
    mixed = [
        t for pair in zip(rng.sample(known, 500), rng.sample(zh, 500), strict=True) for t in pair
    ]
    out = {}
    for name, texts in (("in_distribution", calm), ("half_chinese_reviews", mixed)):
        window = DriftWindow(meta.reference, model="banking77", version=1, size=1000, min_texts=500)
        window.observe(texts, _predict(version, texts))
        reading = window.reading()
        assert reading.signals is not None
        out[name] = {k: round(v, 4) for k, v in reading.signals.items()}
    return out


def _model(
    models: Path, train_rows: list[tuple[str, str]], test_rows: list[tuple[str, str]]
) -> Path:
    """The model trained without HELD_OUT in ``models`` (trained there first if absent)."""
    found = versions(models / "banking77")
    if found:
        return models / "banking77" / str(found[-1])
    models.mkdir(parents=True, exist_ok=True)
    data = _write(models / "train.csv", [r for r in train_rows if r[1] not in HELD_OUT])
    test = _write(models / "test.csv", [r for r in test_rows if r[1] not in HELD_OUT])
    config = TrainConfig(
        data=data, test_data=test, model_dir=models, name="banking77", arch="ngram", verbose=False
    )
    return train(config, log=lambda _m: None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="auto")
    ap.add_argument("--models", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench/results/support-loop.json"))
    args = ap.parse_args()
    train_rows, test_rows = _read(DATA / "train.csv"), _read(DATA / "test.csv")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.monotonic()
        version = _model(args.models or root / "models", train_rows, test_rows)
        result = {
            "held_out_labels": list(HELD_OUT),
            "arch": "ngram",
            "train_seconds": round(time.monotonic() - started, 1),
            "drift": drift(version, test_rows),
            "discovery": discovery(version, test_rows, root, args.space),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
