"""``python -m bench.e5_features``: frozen e5 features + logistic regression on development rows.

For BANKING77, ``--shots`` rows per label drawn from train.csv with ``--seed`` (as
bench.small_data draws them) train, and the other train.csv rows are the development set (all
of them, or ``--dev-per-label`` of each label drawn with the same seed). For waimai,
waimai_train.csv is split 85/15, stratified, with ``--seed``. The test files are never read.
On each: e5 with the "query: " and the "passage: " prefix (L2-normalised 384-d vectors,
``LogisticRegression`` at each C in ``--c``) against bench.small_data's TF-IDF (word 1-2 +
char 1-3-grams) + LinearSVC, that LinearSVC with the e5 vector beside the TF-IDF blocks, and
USE multilingual v3's 512-d embedding (training.encoder.layers) + the same logistic regressions.

Then encode speed in-process (texts/s, ``--speed-texts`` development texts of each corpus at
batch 32 through one traced ``tf.function``), the batches in file order and sorted by length,
for e5 and, beside it, USE multilingual v3. Features are cached
under ``--cache`` by their texts' hash, so a rerun encodes nothing. The result goes to
bench/results/e5-features-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.servers import REPO_ROOT
from bench.small_data import draw_subset, read_rows, svm_baseline
from bench.texts import LABEL_COLUMN, data_dir

Rows = list[tuple[str, str]]
BATCH = 32


def banking77_rows(folder: Path, shots: int, dev_per_label: int, seed: int) -> tuple[Rows, Rows]:
    """``shots`` per label to train; the rest (or ``dev_per_label`` of each label) to evaluate."""
    rows = read_rows(folder / "train.csv", "text", LABEL_COLUMN)
    train = draw_subset(rows, shots, seed)
    taken = set(train)
    rest = [r for r in rows if r not in taken]
    if dev_per_label <= 0:
        return train, rest
    by_label: dict[str, Rows] = defaultdict(list)
    for r in rest:
        by_label[r[1]].append(r)
    rng = random.Random(seed)
    dev = [r for lab in sorted(by_label) for r in rng.sample(by_label[lab], dev_per_label)]
    return train, dev


def waimai_rows(folder: Path, seed: int, dev_share: float = 0.15) -> tuple[Rows, Rows]:
    """waimai_train.csv split (1 - dev_share) / dev_share, stratified by label, with ``seed``."""
    return zh_rows(folder / "waimai_train.csv", seed, dev_share)


def zh_rows(path: Path, seed: int, dev_share: float = 0.15, max_rows: int = 0) -> tuple[Rows, Rows]:
    """A zh_reviews train file (``max_rows`` of it drawn once, stratified, seed 0; 0: all)
    split (1 - dev_share) / dev_share, stratified by label, with ``seed``."""
    from sklearn.model_selection import train_test_split

    rows = read_rows(path, "text", "label")
    if 0 < max_rows < len(rows):
        rows, _ = train_test_split(
            rows, train_size=max_rows, random_state=0, stratify=[lab for _, lab in rows]
        )
    train, dev = train_test_split(
        rows, test_size=dev_share, random_state=seed, stratify=[lab for _, lab in rows]
    )
    return list(train), list(dev)


def make_encode(layer: Any) -> Callable[[list[str]], np.ndarray]:
    """A traced Keras layer: texts -> vectors, in batches of BATCH, each batch as given."""
    import tensorflow as tf

    fn = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.string)])

    def encode(texts: list[str]) -> np.ndarray:
        out = [fn(tf.constant(texts[i : i + BATCH])).numpy() for i in range(0, len(texts), BATCH)]
        return np.concatenate(out)

    return encode


def features(
    encode: Callable[[list[str]], np.ndarray], texts: list[str], cache: Path, key: str
) -> tuple[np.ndarray, float | None]:
    """Vectors of ``texts`` (encoded sorted by length, returned in order) and the seconds it
    took, or None when they came from the cache."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache / f"{key}-{digest}.npy"
    if path.exists():
        return np.load(path), None
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    started = time.monotonic()
    vectors = encode([texts[i] for i in order])
    seconds = time.monotonic() - started
    out = np.empty_like(vectors)
    out[order] = vectors
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out, seconds


def logistic_accuracy(
    train: np.ndarray, train_labels: list[str], dev: np.ndarray, dev_labels: list[str], c: float
) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(train, train_labels)
    return float(np.mean(model.predict(dev) == np.array(dev_labels)))


def svm_accuracy(train: Rows, dev: Rows) -> float:
    """bench.small_data's TF-IDF + LinearSVC, on the same rows through temporary CSV files."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, rows in (("train", train), ("dev", dev)):
            path = Path(tmp) / f"{name}.csv"
            with path.open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["text", "label"])
                w.writerows(rows)
            paths.append(path)
        return svm_baseline(paths[0], paths[1], "text", "label")["accuracy"]


def encode_speed(
    encode: Callable[[list[str]], np.ndarray], texts: list[str], reps: int
) -> dict[str, float]:
    """Median texts/s over ``reps`` passes of ``texts`` at batch BATCH, in the given order and
    sorted by length, the two orders alternating so that machine noise hits both (after one
    warm-up pass of each); also texts per CPU-second of this process (``*_per_cpu_s``), which
    other processes on the machine disturb less than the wall clock."""
    orders = {"file_order": texts, "sorted": sorted(texts, key=len)}
    for ordered in orders.values():
        encode(ordered)
    rates: dict[str, list[float]] = defaultdict(list)
    for _ in range(reps):
        for name, ordered in orders.items():
            wall, cpu = time.monotonic(), time.process_time()
            encode(ordered)
            rates[name].append(len(texts) / (time.monotonic() - wall))
            rates[f"{name}_per_cpu_s"].append(len(texts) / (time.process_time() - cpu))
    return {name: round(statistics.median(r), 1) for name, r in rates.items()}


def combined_accuracy(train: Rows, x_train: np.ndarray, dev: Rows, x_dev: np.ndarray) -> float:
    """LinearSVC (C=0.5) on bench.small_data's TF-IDF blocks with the e5 vector beside them."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union
    from sklearn.svm import LinearSVC

    tfidf = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
    )
    a = hstack([tfidf.fit_transform([t for t, _ in train]), csr_matrix(x_train)]).tocsr()
    b = hstack([tfidf.transform([t for t, _ in dev]), csr_matrix(x_dev)]).tocsr()
    model = LinearSVC(C=0.5).fit(a, [lab for _, lab in train])
    return float(np.mean(model.predict(b) == np.array([lab for _, lab in dev])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e5_features", description=__doc__)
    p.add_argument("--banking77", type=Path, default=None, help="BANKING77's folder")
    p.add_argument("--zh-reviews", type=Path, default=None, help="zh_reviews' folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shots", type=int, default=30)
    p.add_argument("--dev-per-label", type=int, default=0, help="0: all the other rows")
    p.add_argument("--c", type=float, nargs="+", default=[1.0, 10.0, 100.0])
    p.add_argument("--speed-texts", type=int, default=320)
    p.add_argument("--speed-reps", type=int, default=3, help="0: no speed measurement")
    p.add_argument("--corpora", nargs="+", default=["banking77", "waimai"])
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "textcls-e5")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = p.parse_args(argv)
    banking77 = data_dir(args.banking77)
    zh_reviews = args.zh_reviews or banking77.parent / "zh_reviews"

    from training.encoder.e5 import E5Encoder
    from training.encoder.e5_weights import load_e5_weights
    from training.encoder.layers import UseMultilingualEncoder

    weights = load_e5_weights()
    encoders = {p: make_encode(E5Encoder(p, weights=weights)) for p in ("query: ", "passage: ")}
    use = make_encode(UseMultilingualEncoder())
    result: dict[str, Any] = {"command": " ".join(["python -m bench.e5_features", *sys.argv[1:]])}
    for corpus in args.corpora:
        if corpus == "banking77":
            train, dev = banking77_rows(banking77, args.shots, args.dev_per_label, args.seed)
        elif corpus == "waimai":
            train, dev = waimai_rows(zh_reviews, args.seed)
        else:
            raise SystemExit(f"unknown corpus {corpus!r} (banking77, waimai)")
        row: dict[str, Any] = {"train_rows": len(train), "dev_rows": len(dev)}
        row["tfidf_linearsvc"] = svm_accuracy(train, dev)
        print(f"{corpus}: {len(train)} train / {len(dev)} dev rows; TF-IDF + LinearSVC "
              f"{row['tfidf_linearsvc']:.4f}", flush=True)  # fmt: skip
        for prefix, encode in encoders.items():
            key = f"{corpus}-{prefix.strip(': ')}"
            x_train, s_train = features(encode, [t for t, _ in train], args.cache, key)
            x_dev, s_dev = features(encode, [t for t, _ in dev], args.cache, key)
            if s_train is not None and s_dev is not None:
                row[f"e5_{prefix.strip(': ')}_encode_texts_per_s_sorted"] = round(
                    (len(train) + len(dev)) / (s_train + s_dev), 1
                )
            for c in args.c:
                acc = logistic_accuracy(
                    x_train, [lab for _, lab in train], x_dev, [lab for _, lab in dev], c
                )
                row[f"e5_{prefix.strip(': ')}_logreg_C{c:g}"] = round(acc, 4)
                print(f"{corpus}: e5 {prefix!r} + LogisticRegression(C={c:g}) {acc:.4f}",
                      flush=True)  # fmt: skip
            acc = combined_accuracy(train, x_train, dev, x_dev)
            row[f"e5_{prefix.strip(': ')}_with_tfidf_linearsvc"] = round(acc, 4)
            print(f"{corpus}: TF-IDF + e5 {prefix!r} + LinearSVC {acc:.4f}", flush=True)
        x_train, _ = features(use, [t for t, _ in train], args.cache, f"{corpus}-use-m3")
        x_dev, _ = features(use, [t for t, _ in dev], args.cache, f"{corpus}-use-m3")
        for c in args.c:
            acc = logistic_accuracy(
                x_train, [lab for _, lab in train], x_dev, [lab for _, lab in dev], c
            )
            row[f"use_m3_logreg_C{c:g}"] = round(acc, 4)
            print(f"{corpus}: USE-m3 + LogisticRegression(C={c:g}) {acc:.4f}", flush=True)
        speed_texts = [t for t, _ in dev][: args.speed_texts]
        speed_encoders = (("e5", encoders["query: "]), ("use_m3", use))
        for name, encode in speed_encoders if args.speed_reps > 0 else ():
            speed = encode_speed(encode, speed_texts, args.speed_reps)
            row[f"speed_{name}_batch{BATCH}"] = speed
            print(f"{corpus}: {name} at batch {BATCH} ({len(speed_texts)} texts): {speed} texts/s",
                  flush=True)  # fmt: skip
        result[corpus] = row
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"e5-features-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
