"""Discovery's parts on made-up unit vectors: the out-of-scope tests, the graph's groups, the
known questions left out, repeats counted once, the read sample."""

from __future__ import annotations

import numpy as np

from training.discovery.clusters import assign, discover, out_of_scope, sample
from training.discovery.space import Space


def _blob(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    x = centre + spread * rng.standard_normal((n, len(centre)))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _centres(rng: np.random.Generator, k: int, dims: int = 32) -> np.ndarray:
    c = rng.standard_normal((k, dims))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def test_a_crowd_no_known_text_resembles_is_out_of_scope() -> None:
    """A tight crowd near a known label, too near for the far test alone to catch it all."""
    rng = np.random.default_rng(0)
    known, other = _centres(rng, 2)
    new = known + 0.5 * other
    placed = _blob(rng, known, 200, 0.1)
    rows = np.concatenate([_blob(rng, known, 100, 0.1), _blob(rng, new, 20, 0.05)])
    judged = out_of_scope(rows, placed)
    assert judged[100:].all()
    # Texts like the known ones: only the far test's share (its quantile, about a fifth).
    assert judged[:100].mean() < 0.4


def test_groups_are_the_graph_communities_and_small_ones_are_noise() -> None:
    rng = np.random.default_rng(1)
    a, b = _centres(rng, 2)
    x = np.concatenate([_blob(rng, a, 30, 0.1), _blob(rng, b, 20, 0.1)])
    groups = assign(x, min_size=5)
    assert len(set(groups[:30].tolist())) == 1 and len(set(groups[30:].tolist())) == 1
    assert groups[0] != groups[30] and (groups >= 0).all()
    assert (assign(x, min_size=25)[30:] == -1).all()
    # Rows standing for more texts (their weights) make a group big enough.
    weights = np.array([1] * 30 + [2] * 20)
    assert (assign(x, min_size=25, weights=weights) >= 0).all()


def test_discover_counts_repeats_and_leaves_known_questions_out() -> None:
    rng = np.random.default_rng(2)
    known, new = _centres(rng, 2)
    vectors = {f"known {i}": v for i, v in enumerate(_blob(rng, known, 60, 0.1))}
    vectors |= {f"new {i}": v for i, v in enumerate(_blob(rng, new, 12, 0.1))}
    embedded: list[int] = []

    def embed(texts: list[str]) -> np.ndarray:
        embedded.append(len(texts))
        return np.stack([vectors[t] for t in texts])

    # The new question's 12 texts are each logged twice; 8 known texts fell back.
    texts = [f"new {i}" for i in range(12)] * 2 + [f"known {i}" for i in range(40, 60)]
    fell_back = [False] * 24 + [True] * 8 + [False] * 12
    label_texts = {"known": [f"known {i}" for i in range(40)]}
    found = discover(texts, fell_back, label_texts, Space(name="t", embed=embed), min_size=5)
    assert embedded == [12 + 20 + 40]  # each distinct text once
    assert len(found) == 1
    assert sorted(found[0].members) == list(range(24))
    assert found[0].nearest_label == "known"


def test_the_read_sample_takes_hand_offs_first_with_every_copy() -> None:
    texts = [f"t{i}" for i in range(10)] + ["t0", "t0"]
    fell_back = [i in (0, 3, 5) for i in range(10)] + [False, False]
    assert sample(texts, fell_back, 20) == list(range(12))
    kept = sample(texts, fell_back, 4)
    assert {texts[i] for i in kept} >= {"t0", "t3", "t5"}
    assert len({texts[i] for i in kept}) == 4 and {10, 11} <= set(kept)
