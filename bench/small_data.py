"""Language and small-data accuracy: subsets of BANKING77, zh_reviews, and a TF-IDF + SVM baseline.

``python -m bench.small_data subsets --out DIR`` draws k examples per label from BANKING77's
train.csv (k in 10/20/30, several seeds) as ``banking77_k{k}_s{seed}.csv``;
``python -m bench.small_data baseline --train F --test F [--label-column C]`` prints the
accuracy of TF-IDF (word 1-2-grams + character 1-3-grams) + LinearSVC (C=0.5) trained on the
same rows (the reference in zh_reviews' README uses the same character features and C).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from collections import defaultdict
from pathlib import Path

from bench.texts import LABEL_COLUMN, data_dir

SHOTS = (10, 20, 30)
SEEDS = (0, 1, 2)


def read_rows(path: Path, text_column: str, label_column: str) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [(r[text_column].strip(), r[label_column]) for r in csv.DictReader(f)]


def draw_subset(rows: list[tuple[str, str]], k: int, seed: int) -> list[tuple[str, str]]:
    """``k`` rows per label drawn at random with ``seed``, in a shuffled order."""
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    picked = [r for lab in sorted(by_label) for r in rng.sample(by_label[lab], k)]
    rng.shuffle(picked)
    return picked


def write_subsets(out: Path, source: Path | None = None) -> list[Path]:
    """BANKING77 (``bench.texts.data_dir``) subsets into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = read_rows(source or data_dir() / "train.csv", "text", LABEL_COLUMN)
    paths = []
    for k in SHOTS:
        for seed in SEEDS:
            path = out / f"banking77_k{k}_s{seed}.csv"
            with path.open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["text", LABEL_COLUMN])
                w.writerows(draw_subset(rows, k, seed))
            paths.append(path)
    return paths


def svm_baseline(train: Path, test: Path, text_column: str, label_column: str) -> dict[str, float]:
    """Test accuracy of TF-IDF word 1-2 + char 1-3-grams -> LinearSVC(C=0.5), and seconds."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    tr, te = read_rows(train, text_column, label_column), read_rows(test, text_column, label_column)
    started = time.monotonic()
    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        ),
        LinearSVC(C=0.5),
    )
    model.fit([t for t, _ in tr], [lab for _, lab in tr])
    predicted = model.predict([t for t, _ in te])
    accuracy = sum(p == lab for p, (_, lab) in zip(predicted, te, strict=True)) / len(te)
    return {"accuracy": round(float(accuracy), 4), "seconds": round(time.monotonic() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.small_data")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("subsets", help="draw the BANKING77 subsets")
    s.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("baseline", help="TF-IDF + LinearSVC accuracy on --test")
    b.add_argument("--train", type=Path, required=True)
    b.add_argument("--test", type=Path, required=True)
    b.add_argument("--text-column", default="text")
    b.add_argument("--label-column", default="label")
    args = parser.parse_args()
    if args.command == "subsets":
        for path in write_subsets(args.out):
            print(path)
    else:
        result = svm_baseline(args.train, args.test, args.text_column, args.label_column)
        print(json.dumps({"train": str(args.train), **result}))


if __name__ == "__main__":
    main()
