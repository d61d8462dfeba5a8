"""The review queue's default order: the labels that teach the model most come first.

A logged prediction's value as a label is its uncertainty (one minus the margin between its
top two confidences: a close call teaches more than a sure answer) times how many pending
texts it stands for (itself, its near-duplicates, and texts similar to it: a label for one
of many alike is worth more than a label for a one-off), ``u * (1 + DENSITY_WEIGHT * ln(n))``:
uncertainty leads, and among texts about as uncertain the one standing for more comes first
(a heavier weight picks easy, common texts too often: docs/results/support-loop.md).
Near-duplicates (the same words once lower-cased, numbers blanked) are one item with a count,
and an item alike to one ranked above it waits until every item that is not: a page of labels
covers different questions rather than one question phrased many ways.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, select
from sqlalchemy.orm import Session

from app.predlog.review import (
    LogFilter,
    QueuePage,
    ReviewStatus,
    newest_feedback,
    queue_item,
)
from app.predlog.tables import PredictionLog

# The newest pending predictions ranked per request (older ones wait for the next pages of
# later requests); the ranking's cost grows with the square of this.
CANDIDATES = 3000
# Texts at least this similar (cosine of hashed word counts) count as alike.
SIMILAR = 0.6
HASH_DIM = 4096
DENSITY_WEIGHT = 0.02
_WORD = re.compile(r"[^\W\d_]+|\d+")


def duplicate_key(text: str | None, fallback: str) -> str:
    """Texts with the same key are near-duplicates: same words, any case, numbers blanked."""
    if text is None:
        return fallback
    return " ".join("0" if w.isdigit() else w for w in _WORD.findall(text.lower()))


def uncertainty(ranking: Sequence[dict[str, object]], confidence: float) -> float:
    """One minus the margin between the top two confidences (the top one alone if no second)."""
    top = [float(r["confidence"]) for r in ranking[:2]]  # type: ignore[arg-type]
    first = top[0] if top else confidence
    second = top[1] if len(top) > 1 else 0.0
    return 1.0 - max(0.0, first - second)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ranked:
    """Groups of near-duplicates (indices into the input) and each one's teaching value."""

    groups: list[list[int]]
    scores: list[float]
    stands_for: list[int]


def rank_for_teaching(
    texts: Sequence[str | None],
    uncertainties: Sequence[float],
    *,
    density_weight: float = DENSITY_WEIGHT,
    spread: bool = True,
) -> Ranked:
    """Near-duplicate groups of ``texts``, most valuable first (ties: the order given); with
    ``spread``, a group alike to one ranked above it waits until every group that is not."""
    by_key: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        by_key.setdefault(duplicate_key(text, f"\0{i}"), []).append(i)
    groups = list(by_key.values())
    counts = np.array([len(g) for g in groups], dtype=np.float64)
    alike = _alike(list(by_key))
    stands_for = counts + alike.astype(np.float64) @ counts
    u = np.array([max(uncertainties[i] for i in g) for g in groups])
    scores = u * (1.0 + density_weight * np.log(stands_for))
    order = np.argsort(-scores, kind="stable")
    if spread:
        order = _spread(order, alike)
    return Ranked(
        groups=[groups[k] for k in order],
        scores=[round(float(scores[k]), 6) for k in order],
        stands_for=[int(stands_for[k]) for k in order],
    )


def _alike(keys: Sequence[str]) -> np.ndarray:
    """Whether each pair of near-duplicate keys is alike (cosine of hashed word counts)."""
    vectors = np.zeros((len(keys), HASH_DIM), dtype=np.float32)
    for row, key in enumerate(keys):
        if not key.startswith("\0"):
            for word in key.split():
                vectors[row, zlib.crc32(word.encode()) % HASH_DIM] += 1.0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.maximum(norms, 1e-12)
    alike = (vectors @ vectors.T) >= SIMILAR
    np.fill_diagonal(alike, False)
    return alike


def _spread(order: np.ndarray, alike: np.ndarray) -> np.ndarray:
    """``order`` with each group alike to one kept above it moved after all kept ones (in
    their order): a page of labels covers different questions, not one phrased ten ways."""
    covered = np.zeros(len(order), dtype=bool)
    first, later = [], []
    for k in order:
        if covered[k]:
            later.append(k)
        else:
            first.append(k)
            covered |= alike[k]
    return np.array(first + later, dtype=np.int64)


def teach_queue(
    engine: Engine, where: LogFilter, *, status: ReviewStatus, limit: int, offset: int
) -> QueuePage:
    """Pending (or reviewed, or all) predictions as near-duplicate groups, most valuable
    label first; each item is the group's newest prediction with its count."""
    p = PredictionLog
    fb = newest_feedback()
    joined = and_(fb.c.request_id == p.request_id, fb.c.index == p.index)
    conditions = [*where.conditions(), p.role == "primary"]
    if status == "pending":
        conditions.append(fb.c.label.is_(None))
    elif status == "reviewed":
        conditions.append(fb.c.label.is_not(None))
    query = (
        select(p, fb.c.label)
        .outerjoin(fb, joined)
        .where(*conditions)
        .order_by(p.created_at.desc(), p.id.desc())
        .limit(CANDIDATES)
    )
    with Session(engine) as session:
        rows: list[Any] = list(session.execute(query).tuples())
    ranked = rank_for_teaching(
        [row.text for row, _ in rows],
        [uncertainty(row.ranking or [], row.confidence) for row, _ in rows],
    )
    items = []
    for members, score, stands_for in list(
        zip(ranked.groups, ranked.scores, ranked.stands_for, strict=True)
    )[offset : offset + limit]:
        row, corrected = rows[members[0]]
        item = queue_item(row, corrected, 0 if row.fallback else 2)
        items.append(replace(item, duplicates=len(members), similar=stands_for, score=score))
    return QueuePage(items, len(ranked.groups))
