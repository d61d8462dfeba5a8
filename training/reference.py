"""Reference statistics for drift: what a version's held-out traffic looked like, and the
distances the service measures live traffic by.

The trainer writes a ``Reference`` into metadata.json (``reference``); the service keeps a
sliding window of live predictions per model and version and compares it with it
(``app.plane.drift``). Both sides use this module's token rule and distances, so a window of
held-out texts scores as the reference did. No TensorFlow here: the service imports it.

Signals, each a distance with the level at which it alerts (``ALERT_LEVELS``):

- ``labels``: PSI between the predicted-label shares of the window and of the held-out rows.
- ``confidence``: PSI between the histograms of the top confidence (``CONFIDENCE_EDGES``).
- ``fallback_rate``: the window's share of hand-offs minus the held-out share (points / 100).
- ``coverage``: the held-out mean share of a text's tokens found in the training vocabulary
  minus the window's (a rise means words the model never saw).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

# The top-confidence histogram's bin edges: the service's confidence buckets
# (app.metrics.CONFIDENCE_BUCKETS) with 0 in front, so the histogram on /metrics and the
# drift signal cut confidences alike.
CONFIDENCE_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# The most training tokens the vocabulary keeps (most frequent first).
VOCABULARY_MAX = 20_000
SIGNALS = ("labels", "confidence", "fallback_rate", "coverage")
# PSI: under 0.1 no real change, 0.1-0.25 a moderate one, over 0.25 a significant one (the
# usual reading). The rate and coverage levels are absolute differences of shares.
ALERT_LEVELS = {"labels": 0.25, "confidence": 0.25, "fallback_rate": 0.15, "coverage": 0.10}
# Shares are floored here before a PSI so an empty bin does not weigh infinitely.
PSI_FLOOR = 1e-4

# One token per CJK character (these scripts do not separate words by spaces), else runs of
# letters or digits; lower-cased. Punctuation is never a token.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


class Reference(BaseModel):
    """metadata.json ``reference``: the held-out rows' statistics the drift signals compare with."""

    held_out: str = Field(description="the rows measured: test, val or cv (out-of-fold)")
    rows: int = Field(ge=1)
    label_shares: dict[str, float] = Field(
        description="share of rows whose top label is each label"
    )
    confidence_edges: list[float] = Field(default_factory=lambda: list(CONFIDENCE_EDGES))
    confidence_shares: list[float] = Field(description="share of rows in each confidence bin")
    fallback_rate: float = Field(
        ge=0.0, le=1.0, description="share handed off (threshold or margin)"
    )
    coverage: float = Field(
        ge=0.0, le=1.0, description="mean share of a text's tokens in the vocabulary"
    )
    vocabulary: list[str] = Field(description="training tokens, most frequent first")


def tokens(text: str) -> list[str]:
    """The tokens coverage counts: lower-cased words, and each CJK character alone."""
    return _TOKEN.findall(text.lower())


def text_coverage(text: str, vocabulary: frozenset[str] | set[str]) -> float | None:
    """Share of ``text``'s tokens in ``vocabulary``; None for a text with no token."""
    found = tokens(text)
    if not found:
        return None
    return sum(t in vocabulary for t in found) / len(found)


def confidence_bins(
    confidences: np.ndarray, edges: Sequence[float] = CONFIDENCE_EDGES
) -> np.ndarray:
    """The bin index of each confidence (the last bin holds 1.0)."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    return np.searchsorted(inner, np.asarray(confidences, dtype=np.float64), side="right")


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors (each floored at PSI_FLOOR)."""
    p = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    q = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def distances(
    reference: Reference,
    *,
    label_shares: np.ndarray,
    confidence_shares: np.ndarray,
    fallback_rate: float,
    coverage: float,
) -> dict[str, float]:
    """Each signal's distance between ``reference`` and a window's shares (label shares in
    the order of ``reference.label_shares``)."""
    ref_labels = np.fromiter(reference.label_shares.values(), dtype=np.float64)
    return {
        "labels": psi(ref_labels, label_shares),
        "confidence": psi(np.asarray(reference.confidence_shares), confidence_shares),
        "fallback_rate": fallback_rate - reference.fallback_rate,
        "coverage": reference.coverage - coverage,
    }


def vocabulary_of(texts: Iterable[str], limit: int = VOCABULARY_MAX) -> list[str]:
    """The tokens of ``texts`` by document frequency, most frequent first, at most ``limit``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(tokens(text)))
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _leave_one_out_coverage(texts: Sequence[str]) -> float:
    """Mean coverage of each text by the vocabulary of the others (for out-of-fold rows,
    whose texts are the training texts themselves)."""
    per_text = [set(tokens(t)) for t in texts]
    counts: Counter[str] = Counter()
    for distinct in per_text:
        counts.update(distinct)
    shares = []
    for text in texts:
        found = tokens(text)
        if found:
            own = set(found)
            shares.append(sum(counts[t] - (t in own) > 0 for t in found) / len(found))
    return float(np.mean(shares)) if shares else 1.0


@dataclass(frozen=True, kw_only=True)
class HeldOutRows:
    """Rows the model did not train on: their split, texts and served (calibrated)
    probabilities; split ``cv`` means out-of-fold predictions of the training texts."""

    split: str
    texts: Sequence[str]
    probs: np.ndarray


def reference_statistics(
    *,
    labels: Sequence[str],
    train_texts: Sequence[str],
    held: HeldOutRows,
    rule: tuple[float, float],
) -> Reference:
    """The reference of a version, from its held-out rows and its fallback ``rule``
    (threshold, margin): a hand-off is a top confidence under the threshold or a top two
    closer than the margin, as the server decides."""
    held_split, held_texts, held_probs = held.split, held.texts, held.probs
    top = held_probs.argmax(axis=1)
    conf = held_probs.max(axis=1)
    n = len(top)
    label_counts = np.bincount(top, minlength=len(labels))
    bins = np.bincount(confidence_bins(conf), minlength=len(CONFIDENCE_EDGES) - 1)
    vocabulary = vocabulary_of(train_texts)
    if held_split == "cv":
        coverage = _leave_one_out_coverage(train_texts)
    else:
        known = frozenset(vocabulary)
        shares = [c for c in (text_coverage(t, known) for t in held_texts) if c is not None]
        coverage = float(np.mean(shares)) if shares else 1.0
    return Reference(
        held_out=held_split,
        rows=n,
        label_shares={
            lab: round(float(c) / n, 6) for lab, c in zip(labels, label_counts, strict=True)
        },
        confidence_shares=[round(float(b) / n, 6) for b in bins],
        fallback_rate=round(float(np.mean(_handed_off(held_probs, *rule))), 6),
        coverage=round(min(max(coverage, 0.0), 1.0), 6),
        vocabulary=vocabulary,
    )


def _handed_off(probs: np.ndarray, threshold: float, margin: float) -> np.ndarray:
    """Which rows the server hands to a person under (threshold, margin)."""
    ordered = np.sort(probs, axis=1)
    top = ordered[:, -1]
    gap = top - ordered[:, -2] if probs.shape[1] > 1 else np.ones_like(top)
    return (top < threshold) | (gap < margin)


def alerting(signal: str, value: float) -> bool:
    """Whether ``value`` of ``signal`` is over its alert level."""
    return not math.isnan(value) and value > ALERT_LEVELS[signal]
