"""Labels a retrain learns from feedback alone (an intent the team named on the review page).

Corrections naming a label the serving version lacks teach the candidate that label when
there are at least MIN_ROWS distinct texts of it; a share of them (HELD_OUT_SHARE, at least
one) is kept out of training and scores the candidate on the new label, reported beside the
gate, which compares the two versions on the labels both know.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MIN_ROWS = 5
HELD_OUT_SHARE = 0.2


class Named(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def label(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class NewLabels:
    """The new labels' texts to train on and to score the candidate with, and those too few."""

    train: dict[str, list[str]]
    held_out: dict[str, list[str]]
    too_few: dict[str, int]

    @property
    def labels(self) -> set[str]:
        return set(self.train)

    def held_out_texts(self) -> set[str]:
        return {t for texts in self.held_out.values() for t in texts}


def split_new_labels(corrections: Sequence[Named], known: set[str], seed: int = 0) -> NewLabels:
    """The corrections naming labels outside ``known``, by label, split train / held out."""
    by_label: dict[str, list[str]] = {}
    for c in corrections:
        if c.label not in known:
            texts = by_label.setdefault(c.label, [])
            if c.text.strip() not in texts:
                texts.append(c.text.strip())
    train, held, too_few = {}, {}, {}
    rng = random.Random(seed)
    for label, texts in sorted(by_label.items()):
        if len(texts) < MIN_ROWS:
            too_few[label] = len(texts)
            continue
        shuffled = sorted(texts)
        rng.shuffle(shuffled)
        k = max(1, round(HELD_OUT_SHARE * len(shuffled)))
        held[label], train[label] = shuffled[:k], shuffled[k:]
    return NewLabels(train=train, held_out=held, too_few=too_few)


def new_label_report(new: NewLabels, candidate_dir: Path) -> dict[str, Any]:
    """Per new label: texts trained on, held out, and the share of the held-out ones the
    candidate gives that label (its recall there); labels with too few texts."""
    from training.gate import score_version

    out: dict[str, Any] = {"labels": {}, "too_few": new.too_few, "min_rows": MIN_ROWS}
    for label, texts in new.held_out.items():
        pred = score_version(candidate_dir, texts).pred
        out["labels"][label] = {
            "trained": len(new.train[label]),
            "held_out": len(texts),
            "recall": sum(p == label for p in pred) / len(texts),
        }
    return out
