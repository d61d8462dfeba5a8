"""``python -m bench.e5_pipeline``: the whole training pipeline with each encoder choice, dev rows.

Where bench.e5_features fits a logistic regression on frozen vectors, this trains real models
(``training.train.train``, default flags but ``--arch`` and ``--encoders``) on the same kind
of rows: BANKING77 ``K`` rows per label drawn from train.csv with the seed (bench.e5_features'
``banking77_rows``), ``--dev-rows`` other train.csv rows to score on;
waimai and hotel (ChnSentiCorp) train files (``--zh-rows`` of each drawn once, stratified,
seed 0; 0: all) split 85/15 with the seed. The development rows go in as ``--test-data``, so
the version's "test" accuracy is theirs; no test file is ever read. Beside each, bench.small_data's
TF-IDF + LinearSVC on the same rows.

Encoder vectors are cached on disk per (corpus, encoder) by text under ``--cache`` and handed
to each run's features cache (``EncoderFeatures.preload``), so a rerun, another seed or
another combination encodes nothing again; ``train_s`` is then the training time on cached
features, and the time to encode is reported apart (``encode_texts_per_s``). Results go to
bench/results/e5-pipeline-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.e5_features import Rows, banking77_rows, svm_accuracy, zh_rows
from bench.servers import REPO_ROOT
from bench.small_data import read_rows
from bench.texts import LABEL_COLUMN, data_dir

DEV_SHUFFLE_SEED = 1234


def corpus_rows(corpus: str, seed: int, args: argparse.Namespace) -> tuple[Rows, Rows]:
    """(train, dev) rows of ``corpus``: ``banking77:K``, ``waimai`` or ``hotel``."""
    banking77 = data_dir(args.banking77)
    if corpus.startswith("banking77:"):
        shots = int(corpus.partition(":")[2])
        train, rest = banking77_rows(banking77, shots, 0, seed)
        if not args.dev_rows:
            return train, rest
        # The first --dev-rows of one fixed shuffle of the file that this seed does not
        # train on: nearly the same rows for every seed, so their vectors are cached once.
        pool = read_rows(banking77 / "train.csv", "text", LABEL_COLUMN)
        random.Random(DEV_SHUFFLE_SEED).shuffle(pool)
        taken = set(train)
        return train, [r for r in pool if r not in taken][: args.dev_rows]
    if corpus in ("waimai", "hotel"):
        zh = args.zh_reviews or banking77.parent / "zh_reviews"
        return zh_rows(zh / f"{corpus}_train.csv", seed, max_rows=args.zh_rows)
    raise SystemExit(f"unknown corpus {corpus!r} (banking77:K, waimai, hotel)")


class VectorCache:
    """One encoder's vectors by text for one corpus, in ``<cache>/<corpus>-<encoder>.npz``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        self.encode_s = 0.0
        self.encoded = 0
        if path.exists():
            with np.load(path) as f:
                self.vectors = dict(zip(json.loads(str(f["texts"])), f["vectors"], strict=True))

    def fill(self, part: Any, texts: list[str], batch: int = 32) -> None:
        """Encode the texts not cached yet with the layer ``part`` (sorted by length, as a
        server's batches would not be: the cache, not the speed, is the point), then save."""
        import tensorflow as tf

        missing = sorted({t for t in texts if t not in self.vectors}, key=len)
        if not missing:
            return
        part.renew()  # a training run in between reseeded TF, dropping its SentencePiece resource
        fn = tf.function(part, input_signature=[tf.TensorSpec([None], tf.string)])
        started = time.monotonic()
        for i in range(0, len(missing), batch):
            chunk = missing[i : i + batch]
            self.vectors.update(zip(chunk, fn(tf.constant(chunk)).numpy(), strict=True))
        self.encode_s += time.monotonic() - started
        self.encoded += len(missing)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        vectors = np.stack([self.vectors[t] for t in keys])
        np.savez(self.path, texts=np.array(json.dumps(keys)), vectors=vectors)


def write_csv(path: Path, rows: Rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def train_once(
    combo: str, rows: tuple[Rows, Rows], seed: int, caches: dict[str, VectorCache], prefix: str
) -> dict[str, Any]:
    """Train ``combo`` (``ngram`` or comma-separated encoders; e5 with ``prefix``) with
    default flags on (train, dev) ``rows``; dev accuracy, seconds and CPU seconds of this
    process."""
    from training.architectures.encoder import features_for
    from training.config import TrainConfig
    from training.params import ModelParams
    from training.train import train as run_training

    train, dev = rows
    encoders = () if combo == "ngram" else tuple(combo.split(","))
    params = ModelParams(encoders=encoders or ("use",), e5_prefix=prefix)
    features = None
    if encoders:
        features = features_for(params)
        for name in encoders:
            vectors = caches[name].vectors
            texts = [t for t, _ in train + dev]
            features.preload(name, texts, np.stack([vectors[t] for t in texts]))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            data=write_csv(Path(tmp) / "train.csv", train),
            test_data=write_csv(Path(tmp) / "dev.csv", dev),
            name="bench",
            model_dir=Path(tmp) / "models",
            arch="encoder" if encoders else "ngram",
            params=params,
            seed=seed,
            verbose=False,
        )
        wall, cpu = time.monotonic(), time.process_time()
        path = run_training(cfg, log=lambda _m: None, features=features)
        out = {"train_s": round(time.monotonic() - wall, 1)}
        out["train_cpu_s"] = round(time.process_time() - cpu, 1)
        meta = json.loads((path / "metadata.json").read_text())
    out["dev_accuracy"] = round(meta["metrics"]["test"]["accuracy"], 4)
    out["validation"] = meta["params"]["validation"]
    cv = meta["metrics"].get("evaluation", {}).get("cross_validation", {})
    out["chosen_epochs"] = cv.get("member_epochs") or cv.get("chosen_epochs")
    strengths = meta["metrics"]["training"].get("linear_member_strengths")
    if strengths:
        out["linear_member_strengths"] = strengths
    if features is not None:
        out["texts_encoded_in_run"] = features.encoded
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e5_pipeline", description=__doc__)
    p.add_argument("--banking77", type=Path, default=None, help="BANKING77's folder")
    p.add_argument("--zh-reviews", type=Path, default=None, help="zh_reviews' folder")
    p.add_argument("--corpora", nargs="+", default=["banking77:30", "banking77:10"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--combos", nargs="+", default=["ngram", "use", "e5", "use,e5"])
    p.add_argument("--e5-prefix", choices=["query", "passage"], default="query")
    p.add_argument("--dev-rows", type=int, default=2000, help="BANKING77; 0: all the other rows")
    p.add_argument("--zh-rows", type=int, default=0, help="waimai/hotel rows drawn; 0: all")
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "textcls-e5-pipe")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = p.parse_args(argv)

    from training.architectures.encoder import make_stack

    needed = sorted({e for c in args.combos if c != "ngram" for e in c.split(",")})
    stack = make_stack(needed, args.e5_prefix) if needed else None
    result: dict[str, Any] = {"command": " ".join(["python -m bench.e5_pipeline", *sys.argv[1:]])}
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"e5-pipeline-{stamp}.json"
    for corpus in args.corpora:
        caches = {
            name: VectorCache(args.cache / f"{corpus.split(':')[0]}-{_cache_name(name, args)}.npz")
            for name in needed
        }
        rows: dict[str, Any] = {}
        for seed in args.seeds:
            train, dev = corpus_rows(corpus, seed, args)
            row: dict[str, Any] = {"train_rows": len(train), "dev_rows": len(dev)}
            row["tfidf_linearsvc"] = round(svm_accuracy(train, dev), 4)
            for name, cache in caches.items():
                assert stack is not None
                cache.fill(stack.parts[stack.names.index(name)], [t for t, _ in train + dev])
                if cache.encoded:
                    rows[f"{name}_encode_texts_per_s"] = round(cache.encoded / cache.encode_s, 1)
            for combo in args.combos:
                row[combo] = train_once(combo, (train, dev), seed, caches, args.e5_prefix)
                rows[f"seed{seed}"] = row
                result[corpus] = rows
                out.write_text(json.dumps(result, indent=2) + "\n")  # after every run
                print(f"{corpus} seed {seed}: {combo} {row[combo]} (TF-IDF + LinearSVC "
                      f"{row['tfidf_linearsvc']})", flush=True)  # fmt: skip
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def _cache_name(encoder: str, args: argparse.Namespace) -> str:
    return f"e5-{args.e5_prefix}" if encoder == "e5" else encoder


if __name__ == "__main__":
    sys.exit(main())
