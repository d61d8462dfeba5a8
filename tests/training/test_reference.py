"""training.reference: the token rule, the distances, and the statistics a version stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.artifact import Metadata, read_metadata
from training.reference import (
    ALERT_LEVELS,
    CONFIDENCE_EDGES,
    HeldOutRows,
    confidence_bins,
    psi,
    reference_statistics,
    text_coverage,
    tokens,
    vocabulary_of,
)


def test_tokens_split_words_and_each_cjk_character() -> None:
    assert tokens("Where's my CARD, #123?") == ["where", "s", "my", "card", "123"]
    assert tokens("我的卡丢了 card") == ["我", "的", "卡", "丢", "了", "card"]
    assert tokens("...!") == []


def test_coverage_is_the_share_of_known_tokens() -> None:
    vocab = frozenset({"my", "card"})
    assert text_coverage("my card is lost", vocab) == 0.5
    assert text_coverage("!!", vocab) is None


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    p = np.array([0.5, 0.3, 0.2])
    assert psi(p, p) == pytest.approx(0.0)
    small = psi(p, np.array([0.45, 0.33, 0.22]))
    large = psi(p, np.array([0.1, 0.1, 0.8]))
    assert 0 < small < 0.1 < ALERT_LEVELS["labels"] < large
    # An empty bin is floored, not infinite.
    assert np.isfinite(psi(p, np.array([1.0, 0.0, 0.0])))


def test_confidence_bins_follow_the_edges() -> None:
    bins = confidence_bins(np.array([0.0, 0.05, 0.1, 0.95, 0.999, 1.0]))
    assert bins.tolist() == [0, 0, 1, 10, 11, 11]
    assert len(CONFIDENCE_EDGES) - 1 == 12


def test_vocabulary_is_by_document_frequency() -> None:
    assert vocabulary_of(["a b b", "b c", "b"], limit=2) == ["b", "a"]


def test_statistics_of_held_out_rows() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.95, 0.05]])
    ref = reference_statistics(
        labels=["a", "b"],
        train_texts=["lost card", "card fee"],
        held=HeldOutRows(
            split="test", texts=["lost card", "new card", "card fee", "hello"], probs=probs
        ),
        rule=(0.7, 0.0),
    )
    assert ref.label_shares == {"a": 0.75, "b": 0.25}
    assert sum(ref.confidence_shares) == pytest.approx(1.0)
    assert ref.fallback_rate == 0.25  # 0.6 is under 0.7
    assert ref.coverage == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    assert ref.vocabulary[0] == "card"


def test_the_fallback_rate_counts_near_ties_as_the_server_does() -> None:
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.6, 0.4], [0.3, 0.7]])
    held = HeldOutRows(split="test", texts=["a", "b", "c", "d"], probs=probs)
    ref = reference_statistics(labels=["a", "b"], train_texts=["a"], held=held, rule=(0.5, 0.25))
    assert ref.fallback_rate == 0.5  # 0.55/0.45 and 0.6/0.4 are closer than 0.25


def test_out_of_fold_coverage_leaves_each_text_out() -> None:
    ref = reference_statistics(
        labels=["a", "b"],
        train_texts=["lost card", "card fee", "unique"],
        held=HeldOutRows(
            split="cv",
            texts=["lost card", "card fee", "unique"],
            probs=np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]),
        ),
        rule=(0.5, 0.0),
    )
    # "card" is in another text, "lost", "fee" and "unique" are not.
    assert ref.coverage == pytest.approx((0.5 + 0.5 + 0.0) / 3)


def test_a_trained_version_stores_its_reference(tiny_model_repo: Path) -> None:
    meta = read_metadata(tiny_model_repo / "example" / "1")
    ref = meta.reference
    assert ref is not None
    assert list(ref.label_shares) == meta.labels
    assert sum(ref.label_shares.values()) == pytest.approx(1.0, abs=1e-4)
    assert ref.held_out == "test" and ref.rows == meta.data.rows["test"]
    assert ref.fallback_rate == pytest.approx(meta.fallback.test_fallback_rate, abs=1e-6)
    assert 0.5 < ref.coverage <= 1.0 and "card" in ref.vocabulary


def test_metadata_without_a_reference_still_loads(tiny_model_repo: Path) -> None:
    raw = read_metadata(tiny_model_repo / "example" / "1").model_dump(mode="json")
    del raw["reference"]
    assert Metadata.model_validate(raw).reference is None
