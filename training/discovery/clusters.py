"""Group embedded texts into candidate intents and describe each group.

The texts to group are the hand-offs and the texts judged out of scope (``out_of_scope``).
They are grouped as the communities of their nearest-neighbour graph (Louvain), which finds
any number of groups without a distance to tune per space; a member closer to the known
labels' texts than to its own group is then left out (a known question let through), and
groups under the minimum size are noise: a support desk's new question arrives as many
similar messages, while the rest of the hand-offs are one-offs. Each group is described by
its most central texts, its distinguishing words and the known label it is closest to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from training.discovery.space import Space
from training.reference import tokens

EXAMPLES = 10
TERMS = 8
# A distinguishing word is in at least this share of the group's texts.
MIN_TERM_SHARE = 0.2
MAX_TEXTS = 1000
# Each text's most similar texts the graph joins it to.
NEIGHBOURS = 15
# A text whose nearest known-label text is less similar than this quantile of the known
# texts' own nearest neighbours is out of scope.
OUT_OF_SCOPE_QUANTILE = 0.2
# A text is also out of scope when its DENSITY_K nearest logged texts are this much more
# similar, on average, than its DENSITY_K nearest known-label texts.
DENSITY_K = 5
DENSITY_MARGIN = 0.05
# Logged texts at least this similar are copies of one message, not a crowd.
NEAR_COPY = 0.95


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """One group: its members (row numbers of the input, most central first), its most
    central texts, its distinguishing words and the closest known label."""

    members: list[int]
    examples: list[str]
    terms: list[str]
    nearest_label: str | None
    nearest_similarity: float | None


def assign(x: np.ndarray, min_size: int, weights: np.ndarray | None = None) -> np.ndarray:
    """A group number per row of ``x`` (L2-normalised), -1 for noise (groups under
    ``min_size`` texts, a row counting as its ``weights``, default 1): the communities
    (Louvain, modularity) of the graph joining each row to its NEIGHBOURS most similar
    rows, weighted by their cosine."""
    import networkx as nx

    n = len(x)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if n < 3 or weights.sum() < min_size:
        return np.full(n, -1)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    k = min(NEIGHBOURS, n - 1)
    for i in range(0, n, 2048):
        sims = x[i : i + 2048] @ x.T
        sims[np.arange(len(sims)), np.arange(i, i + len(sims))] = -np.inf
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        graph.add_weighted_edges_from(
            (i + r, int(j), max(float(sims[r, j]), 0.0)) for r in range(len(sims)) for j in near[r]
        )
    groups = np.full(n, -1)
    for c, members in enumerate(nx.community.louvain_communities(graph, seed=0)):
        rows = list(members)
        if weights[rows].sum() >= min_size:
            groups[rows] = c
    return groups


def distinguishing_terms(members: Sequence[str], everyone: Counter[str], n_all: int) -> list[str]:
    """Words far more frequent in the group's texts than in all texts (document shares)."""
    inside: Counter[str] = Counter()
    for text in members:
        inside.update(set(tokens(text)))
    n = len(members)
    scored = [
        (share - everyone[t] / n_all, t)
        for t, c in inside.items()
        if (share := c / n) >= MIN_TERM_SHARE
    ]
    return [t for _, t in sorted(scored, key=lambda s: (-s[0], s[1]))[:TERMS]]


def describe(
    texts: Sequence[str],
    x: np.ndarray,
    groups: np.ndarray,
    label_centroids: Mapping[str, np.ndarray],
) -> list[Cluster]:
    """Each group (biggest first) with its members ordered by closeness to its centre."""
    everyone: Counter[str] = Counter()
    for text in texts:
        everyone.update(set(tokens(text)))
    names = list(label_centroids)
    centroids = np.stack([label_centroids[n] for n in names]) if names else None
    out = []
    for g in sorted(set(groups.tolist()) - {-1}):
        rows = np.flatnonzero(groups == g)
        centre = x[rows].mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        order = rows[np.argsort(-(x[rows] @ centre), kind="stable")]
        member_texts = [texts[i] for i in order]
        nearest, similarity = None, None
        if centroids is not None:
            sims = centroids @ centre
            best = int(np.argmax(sims))
            nearest, similarity = names[best], round(float(sims[best]), 4)
        out.append(
            Cluster(
                members=order.tolist(),
                examples=_distinct(member_texts, EXAMPLES),
                terms=distinguishing_terms(member_texts, everyone, len(texts)),
                nearest_label=nearest,
                nearest_similarity=similarity,
            )
        )
    return sorted(out, key=lambda c: -len(c.members))


def _distinct(texts: Sequence[str], n: int) -> list[str]:
    seen: dict[str, None] = {}
    for t in texts:
        seen.setdefault(t, None)
        if len(seen) == n:
            break
    return list(seen)


def centroids_of(x: np.ndarray, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """The unit mean vector of each label's rows."""
    out = {}
    for label in sorted(set(labels)):
        rows = [i for i, lab in enumerate(labels) if lab == label]
        centre = x[rows].mean(axis=0)
        out[label] = centre / max(float(np.linalg.norm(centre)), 1e-12)
    return out


def out_of_scope(rows: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """Whether each row (distinct texts) is out of scope of the known labels' texts
    (``placed``), by either of two tests:

    - far: its nearest known text is less similar than the OUT_OF_SCOPE_QUANTILE of the known
      texts' own nearest neighbours (leave-one-out);
    - crowded elsewhere: its nearest other rows are more similar, on average, by
      DENSITY_MARGIN than its DENSITY_K nearest known texts (as many rows as known texts
      per text of each); a new question arrives as many alike messages that no known
      label's texts resemble as closely.
    """
    if len(placed) < 2 or len(rows) == 0:
        return np.zeros(len(rows), dtype=bool)
    among = placed @ placed.T
    np.fill_diagonal(among, -np.inf)
    limit = float(np.quantile(among.max(axis=1), OUT_OF_SCOPE_QUANTILE))
    known = _top_mean(rows, placed, DENSITY_K, skip_self=False)
    far = _top_mean(rows, placed, 1, skip_self=False) < limit
    # As many logged neighbours as known ones per text of each: the same density on both
    # sides gives the same similarity, however many more texts the log holds.
    k = round(DENSITY_K * len(rows) / len(placed))
    if not 1 <= k < len(rows):
        return far
    crowded = _top_mean(rows, rows, k, skip_self=True) - known > DENSITY_MARGIN
    return np.asarray(far | crowded)


def _top_mean(rows: np.ndarray, others: np.ndarray, k: int, *, skip_self: bool) -> np.ndarray:
    """Each row's mean similarity to its ``k`` most similar ``others`` (``skip_self``: the
    rows themselves, each one's own row and its near-copies left out), in blocks to bound
    memory."""
    out = []
    for i in range(0, len(rows), 2048):
        sims = rows[i : i + 2048] @ others.T
        if skip_self:
            # A copy with a word changed (an order number) is the same message again.
            sims[sims >= NEAR_COPY] = -np.inf
            sims[np.arange(len(sims)), np.arange(i, i + len(sims))] = -np.inf
        top = -np.partition(-sims, k - 1, axis=1)[:, :k]
        out.append(top.mean(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def drop_known(
    x: np.ndarray, groups: np.ndarray, placed: np.ndarray, min_size: int, weights: np.ndarray
) -> np.ndarray:
    """``groups`` without the members closer to the known labels' texts (``placed``) than to
    their own group (mean of the DENSITY_K most similar on each side): those are known
    questions the out-of-scope test let through; groups left under ``min_size`` become -1."""
    out = groups.copy()
    known = _top_mean(x, placed, DENSITY_K, skip_self=False)
    for g in set(groups.tolist()) - {-1}:
        rows = np.flatnonzero(groups == g)
        k = min(DENSITY_K, len(rows) - 1)
        if k < 1:
            continue
        own = _top_mean(x[rows], x[rows], k, skip_self=True)
        out[rows[known[rows] > own]] = -1
        kept = rows[out[rows] == g]
        if weights[kept].sum() < min_size:
            out[kept] = -1
    return out


def sample(texts: Sequence[str], fell_back: Sequence[bool], limit: int) -> list[int]:
    """Indices of the ``texts`` discovery reads when they hold more than ``limit`` distinct
    texts (the encoder's time grows with them): every copy of up to ``limit`` distinct texts,
    the ones that fell back first, each tier drawn at random (seeded); all when fewer."""
    copies: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        copies.setdefault(text, []).append(i)
    if len(copies) <= limit:
        return list(range(len(texts)))
    rng = np.random.default_rng(0)
    distinct = list(copies)
    back = np.array([any(fell_back[i] for i in copies[t]) for t in distinct])
    tiers = [rng.permutation(np.flatnonzero(back)), rng.permutation(np.flatnonzero(~back))]
    kept = np.concatenate(tiers)[:limit]
    return sorted(i for k in kept for i in copies[distinct[int(k)]])


def discover(
    texts: Sequence[str],
    fell_back: Sequence[bool],
    label_texts: Mapping[str, Sequence[str]],
    space: Space,
    *,
    min_size: int,
) -> list[Cluster]:
    """Group the ``texts`` that fell back (``fell_back``: all True to group every text) or are
    out of scope in ``space``; ``label_texts`` (a sample of each known label's texts) place
    the known labels, for the out-of-scope judgement and each group's nearest label. A text
    logged many times is embedded and judged once and counts as many. Members are indices
    into ``texts``; groups under ``min_size`` texts are noise, left out."""
    known = [(label, t) for label, ts in label_texts.items() for t in ts]
    if not texts:
        return []
    copies: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        copies.setdefault(text, []).append(i)
    distinct = list(copies)
    x = space.embed([*distinct, *(t for _, t in known)])
    rows, placed = x[: len(distinct)], x[len(distinct) :]
    chosen = np.array([any(fell_back[i] for i in copies[t]) for t in distinct], dtype=bool)
    if not chosen.all():
        chosen |= out_of_scope(rows, placed)
    picked = np.flatnonzero(chosen)
    weights = np.array([len(copies[distinct[int(i)]]) for i in picked])
    groups = assign(rows[picked], min_size, weights)
    if len(placed):
        groups = drop_known(rows[picked], groups, placed, min_size, weights)
    centroids = centroids_of(placed, [label for label, _ in known]) if known else {}
    found = describe([distinct[int(i)] for i in picked], rows[picked], groups, centroids)
    expanded = [
        replace(c, members=[k for m in c.members for k in copies[distinct[int(picked[m])]]])
        for c in found
    ]
    return sorted(expanded, key=lambda c: -len(c.members))
