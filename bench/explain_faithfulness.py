"""``python -m bench.explain_faithfulness``: how faithful and how costly token explanations are.

For each of N test texts (a seeded sample) and each method, the tokens are weighed for the
predicted label; then the text is scored again with its top-weighted token deleted, and with
a random token deleted (the same token for every method), and with the top 3 deleted together
against 3 random ones. Faithful weights make the first drop much larger than the second.
Methods (all model-agnostic: they only call the served signature):

- ``occlusion``: weight = p(label | text) - p(label | text without the token); n + 1 rows.
  What /explain does (app.explainer), computed here with the same token and removal rules.
- ``keep_one``: weight = p(label | the token alone) - p(label | ""); n + 1 rows.
- ``sampled``: LIME-like: 32 random subsets of the tokens (each kept with p 0.5), least
  squares of p(label) on the keep mask; 33 rows.

Cost is the model call for one text's rows, timed on this machine (median over the texts).
The deletion drops are always measured by scoring the edited texts anew, never taken from the
weights, so a method cannot grade itself.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.plane.tokens import model_token_spans, without_span

Predict = Callable[[list[str]], np.ndarray]
SAMPLES = 32


def delete_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """``text`` without each of ``spans`` (removed right to left, so offsets stay valid)."""
    for start, end in sorted(spans, reverse=True):
        text = without_span(text, start, end)
    return text


def occlusion(predict: Predict, text: str, spans: list[tuple[int, int]], col: int) -> np.ndarray:
    probs = predict([text, *(without_span(text, s, e) for s, e in spans)])
    return probs[0, col] - probs[1:, col]


def keep_one(predict: Predict, text: str, spans: list[tuple[int, int]], col: int) -> np.ndarray:
    probs = predict(["", *(text[s:e] for s, e in spans)])
    return probs[1:, col] - probs[0, col]


def sampled(
    predict: Predict, text: str, spans: list[tuple[int, int]], col: int, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = rng.random((SAMPLES, len(spans))) < 0.5
    texts = [text] + [delete_spans(text, [sp for sp, k in zip(spans, m, strict=True) if not k])
                      for m in masks]  # fmt: skip
    probs = predict(texts)[:, col]
    design = np.vstack([np.ones(len(spans), bool), masks]).astype(np.float64)
    design = np.hstack([design, np.ones((design.shape[0], 1))])
    coef, *_ = np.linalg.lstsq(design, probs.astype(np.float64), rcond=None)
    return coef[:-1]


METHODS = {"occlusion": occlusion, "keep_one": keep_one, "sampled": sampled}


@dataclass
class MethodResult:
    top_drop: list[float]
    random_drop: list[float]
    top3_drop: list[float]
    random3_drop: list[float]
    ms: list[float]

    def summary(self) -> dict[str, float]:
        mean = statistics.fmean
        return {
            "mean_drop_top": mean(self.top_drop),
            "mean_drop_random": mean(self.random_drop),
            "ratio": mean(self.top_drop) / max(mean(self.random_drop), 1e-12),
            "mean_drop_top3": mean(self.top3_drop) if self.top3_drop else float("nan"),
            "mean_drop_random3": mean(self.random3_drop) if self.random3_drop else float("nan"),
            "ms_p50": statistics.median(self.ms),
        }


def evaluate(
    predict: Predict,
    texts: Sequence[str],
    metadata: Any,
    methods: Sequence[str] = ("occlusion",),
    seed: int = 0,
    max_tokens: int = 64,
) -> dict[str, dict[str, float]]:
    """Each method's mean deletion drops (top vs random token) and its median cost."""
    rng = random.Random(seed)
    results = {m: MethodResult([], [], [], [], []) for m in methods}
    for text in texts:
        spans = model_token_spans(text, metadata)[:max_tokens]
        if len(spans) < 2:
            continue  # nothing to compare a top token with
        base = predict([text])[0]
        col = int(np.argmax(base))
        pick = rng.randrange(len(spans))
        picks3 = rng.sample(range(len(spans)), min(3, len(spans)))
        for name in methods:
            started = time.perf_counter()
            weights = np.asarray(METHODS[name](predict, text, spans, col))
            ms = (time.perf_counter() - started) * 1000
            order = np.argsort(-weights, kind="stable")
            top3 = [spans[i] for i in order[:3]]
            edited = [
                delete_spans(text, [spans[order[0]]]),
                delete_spans(text, [spans[pick]]),
                delete_spans(text, top3),
                delete_spans(text, [spans[i] for i in picks3]),
            ]
            after = predict(edited)[:, col]
            r = results[name]
            r.top_drop.append(float(base[col] - after[0]))
            r.random_drop.append(float(base[col] - after[1]))
            if len(spans) > 3:
                r.top3_drop.append(float(base[col] - after[2]))
                r.random3_drop.append(float(base[col] - after[3]))
            r.ms.append(ms)
    return {name: r.summary() | {"texts": len(r.ms)} for name, r in results.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.explain_faithfulness", description=__doc__)
    p.add_argument("version_dir", type=Path, help="A model version folder, e.g. models/x/1.")
    p.add_argument("test_file", type=Path, help="CSV with a text column.")
    p.add_argument("--n", type=int, default=100, help="Texts sampled from the file.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--json", type=Path, help="Also write the results here.")
    args = p.parse_args(argv)

    from app.plane.device import configure_device
    from app.plane.loaded_model import LoadedModel
    from bench.texts import read_texts

    version_dir: Path = args.version_dir
    model = LoadedModel(
        version_dir.parent.name, int(version_dir.name), version_dir, configure_device("cpu")
    )
    model.load()
    assert model.metadata is not None
    all_texts = read_texts(args.test_file)
    texts = random.Random(args.seed).sample(all_texts, min(args.n, len(all_texts)))
    out = evaluate(model.predict, texts, model.metadata, args.methods.split(","), args.seed)
    report = {"model": str(version_dir), "test_file": str(args.test_file), "n": len(texts)}
    report["methods"] = out
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
