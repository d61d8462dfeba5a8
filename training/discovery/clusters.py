"""Group embedded texts into candidate intents and describe each group.

HDBSCAN (scikit-learn) finds groups of any number and shape and leaves scattered texts out
as noise: a support desk's new question arrives as many similar messages, while the rest
of the hand-offs are one-offs. Each group is then described by its most central texts, its
distinguishing words and the known label it is closest to.
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
NEIGHBOURS = 30
# A text whose nearest known-label text is less similar than this quantile of the known
# texts' own nearest neighbours is out of scope.
OUT_OF_SCOPE_QUANTILE = 0.2
SILHOUETTE_SAMPLE = 3000
# Two groups merge while their centres' cosine is at least this share of their cohesion.
MERGE_RATIO = 0.65
# Cosine distances the tree is cut at, the best by silhouette kept.
CUTS = tuple(round(0.2 + 0.05 * i, 2) for i in range(15))


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """One group: its members (row numbers of the input, most central first), its most
    central texts, its distinguishing words and the closest known label."""

    members: list[int]
    examples: list[str]
    terms: list[str]
    nearest_label: str | None
    nearest_similarity: float | None


def assign(x: np.ndarray, min_size: int) -> np.ndarray:
    """A group number per row of ``x`` (L2-normalised), -1 for noise (groups under
    ``min_size``): the average-linkage tree cut where the silhouette is best."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.neighbors import kneighbors_graph

    n = len(x)
    if n < max(min_size, 3):
        return np.full(n, -1)
    graph = kneighbors_graph(x, min(NEIGHBOURS, n - 1), metric="cosine", include_self=False)
    tree = AgglomerativeClustering(
        n_clusters=None,
        distance_threshold=2.0,  # past the largest cosine distance: the whole tree
        metric="cosine",
        linkage="average",
        connectivity=graph,
    ).fit(x)
    rng = np.random.default_rng(0)
    sample = rng.choice(n, size=min(n, SILHOUETTE_SAMPLE), replace=False)
    cuts = [_cut(tree.children_, tree.distances_, n, cut, min_size) for cut in CUTS]
    scores = [_silhouette(x, groups, sample) for groups in cuts]
    best = int(np.argmax(scores))
    return merge_close(x, cuts[best]) if scores[best] > -1 else np.full(n, -1)


def merge_close(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Merge groups that are phrasings of one intent the tree kept apart.

    Two groups are close when their centres' cosine is at least MERGE_RATIO of the looser
    one's cohesion (the length of its mean unit vector); sets of groups merge, closest
    first, while they are close on average (average linkage over the groups, so one close
    pair does not chain two intents).
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    ids = sorted(set(groups.tolist()) - {-1})
    if len(ids) < 2:
        return groups
    means = np.stack([x[groups == g].mean(axis=0) for g in ids])
    cohesion = np.linalg.norm(means, axis=1)
    units = means / np.maximum(cohesion, 1e-12)[:, None]
    close = (units @ units.T) / np.minimum.outer(cohesion, cohesion)
    # Average linkage (scipy's UPGMA) on a shifted distance: a constant shift keeps the
    # averages' order, so sets merge while their mean closeness is at least MERGE_RATIO.
    shift = float(close.max()) + 1e-6
    distance = np.maximum(shift - (close + close.T) / 2, 0.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    found = fcluster(tree, t=shift - MERGE_RATIO, criterion="distance")
    sets = [list(np.flatnonzero(found == f)) for f in sorted(set(found.tolist()))]
    merged = groups.copy()
    for members in sets:
        for k in members[1:]:
            merged[groups == ids[int(k)]] = ids[int(members[0])]
    return merged


def _cut(
    children: np.ndarray, heights: np.ndarray, n: int, cut: float, min_size: int
) -> np.ndarray:
    """Groups of the tree's merges under ``cut``; groups under ``min_size`` become -1."""
    parent = np.arange(2 * n - 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for k, (a, b) in enumerate(children):
        if heights[k] <= cut:
            parent[root(int(a))] = n + k
            parent[root(int(b))] = n + k
    roots = np.array([root(i) for i in range(n)])
    _, groups, sizes = np.unique(roots, return_inverse=True, return_counts=True)
    return np.where(sizes[groups] >= min_size, groups, -1)


def _silhouette(x: np.ndarray, groups: np.ndarray, sample: np.ndarray) -> float:
    """Mean silhouette (cosine) of the sampled rows, noise counting 0: a cut that leaves most
    texts out, or lumps different ones together, scores low."""
    from sklearn.metrics import silhouette_samples

    g = groups[sample]
    kept = g >= 0
    if len(set(g[kept].tolist())) < 2:
        return -1.0
    values = np.zeros(len(sample))
    values[kept] = silhouette_samples(x[sample][kept], g[kept], metric="cosine")
    return float(values.mean())


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
    """Whether each row is further from every known label's texts (``placed``) than nearly
    all of those texts are from each other: its nearest one is less similar than the
    OUT_OF_SCOPE_QUANTILE of theirs (leave-one-out)."""
    if len(placed) < 2 or len(rows) == 0:
        return np.zeros(len(rows), dtype=bool)
    among = placed @ placed.T
    np.fill_diagonal(among, -np.inf)
    limit = float(np.quantile(among.max(axis=1), OUT_OF_SCOPE_QUANTILE))
    nearest = np.concatenate(
        [(rows[i : i + 2048] @ placed.T).max(axis=1) for i in range(0, len(rows), 2048)]
    )
    return np.asarray(nearest < limit)


def discover(
    texts: Sequence[str],
    fell_back: Sequence[bool],
    label_texts: Mapping[str, Sequence[str]],
    space: Space,
    *,
    min_size: int,
) -> list[Cluster]:
    """Group the ``texts`` that fell back (``fell_back``: all True to group every text) or are
    out of scope in
    ``space``; ``label_texts`` (a sample of each known label's texts) place the known labels,
    for the out-of-scope judgement and each group's nearest label. Members are indices into
    ``texts``; groups under ``min_size`` are noise, left out."""
    known = [(label, t) for label, ts in label_texts.items() for t in ts]
    if not texts:
        return []
    x = space.embed([*texts, *(t for _, t in known)])
    rows, placed = x[: len(texts)], x[len(texts) :]
    chosen = np.asarray(fell_back, dtype=bool)
    if not chosen.all():
        chosen |= out_of_scope(rows, placed)
    picked = np.flatnonzero(chosen)
    groups = assign(rows[picked], min_size)
    centroids = centroids_of(placed, [label for label, _ in known]) if known else {}
    found = describe([texts[int(i)] for i in picked], rows[picked], groups, centroids)
    return [replace(c, members=[int(picked[m]) for m in c.members]) for c in found]
