"""Stratified train/validation/test split with a fixed seed."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def stratified_split(
    labels: list[str], fractions: tuple[float, ...], seed: int
) -> tuple[list[int], ...]:
    """Split row indices into ``1 + len(fractions)`` parts, keeping label proportions.

    Part 0 (train) gets what the other parts do not; each label keeps at least one train row,
    so a label with two examples can end up absent from a held-out part.
    """
    if any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(f"held-out fractions {fractions} must be >= 0 and sum to less than 1")
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for label in sorted(by_label):
        idx = np.array(by_label[label])
        rng.shuffle(idx)
        n = len(idx)
        start = 0
        for k, fraction in enumerate(fractions, start=1):
            take = min(int(round(n * fraction)), n - start - 1)
            take = max(take, 0)
            parts[k].extend(idx[start : start + take].tolist())
            start += take
        parts[0].extend(idx[start:].tolist())
    return tuple(sorted(p) for p in parts)
