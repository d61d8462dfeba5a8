"""``python -m bench.fallback_rates VERSION_DIR [TEST_FILE]``: the fallback rule of one trained
version with and without its near-tie margin.

Prints the version's threshold and margin, the held-out figures the trainer recorded in
``metadata.json`` (validation split or cross-validation), and, given a labelled test file
(``text,label`` CSV; ``--label-column`` otherwise), the share of test texts falling back and
the precision of the rest under the threshold alone and under threshold and margin, as the
service applies them (app.plane.ranking); ``--text`` shows single texts the same way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from app.plane.device import CPU
from app.plane.loaded_model import LoadedModel
from app.plane.ranking import descending_order, rank
from training.data import load_dataset


def rates(
    probs: np.ndarray, y: np.ndarray, labels: list[str], threshold: float, margin: float
) -> dict[str, float | None]:
    ranked = rank(
        probs, descending_order(probs), labels, top_k=1, threshold=threshold, margin=margin
    )
    back = np.array([p.fallback for p in ranked])
    correct = probs.argmax(axis=1) == y
    kept = ~back
    return {
        "fallback_rate": float(back.mean()),
        "precision_of_kept": float(correct[kept].mean()) if kept.any() else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.fallback_rates", description=__doc__)
    p.add_argument("version_dir", type=Path)
    p.add_argument("test_file", type=Path, nargs="?")
    p.add_argument("--label-column", default="label")
    p.add_argument("--text", action="append", default=[], help="A text to show (repeatable).")
    args = p.parse_args()
    path: Path = args.version_dir
    model = LoadedModel(path.parent.name, int(path.name), path, device=CPU)
    model.load()
    assert model.metadata is not None
    fb = model.metadata.fallback
    out: dict[str, object] = {
        "model": f"{model.name}/{model.version}",
        "arch": model.metadata.arch,
        "threshold": fb.threshold,
        "margin": fb.margin,
        "held_out": {
            "on": fb.chosen_on,
            "rows": fb.held_out_rows,
            "fallback_rate_threshold_alone": fb.val_fallback_rate_without_margin,
            "fallback_rate_with_margin": fb.val_fallback_rate,
        },
    }
    if args.test_file is not None:
        ds = load_dataset(args.test_file, label_column=args.label_column)
        texts = ds.texts
        index = {label: i for i, label in enumerate(model.labels)}
        y = np.array([index[label] for label in ds.labels])
        probs = np.concatenate(
            [model.predict(texts[i : i + 256]) for i in range(0, len(texts), 256)]
        )
        out["test"] = {
            "file": str(args.test_file),
            "rows": len(texts),
            "accuracy": float((probs.argmax(axis=1) == y).mean()),
            "threshold_alone": rates(probs, y, model.labels, fb.threshold, 0.0),
            "with_margin": rates(probs, y, model.labels, fb.threshold, fb.margin),
        }
    if args.text:
        probs = model.predict(args.text)
        order = descending_order(probs)
        shown = []
        for text, row, top in zip(args.text, probs, order, strict=True):
            first, second = float(row[top[0]]), float(row[top[1]])
            shown.append(
                {
                    "text": text,
                    "ranking": [[model.labels[top[0]], first], [model.labels[top[1]], second]],
                    "fallback_threshold_alone": first < fb.threshold,
                    "fallback_with_margin": first < fb.threshold or first - second < fb.margin,
                }
            )
        out["texts"] = shown
    model.release()
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
