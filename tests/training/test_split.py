"""Stratified split: proportions per label, disjoint parts, fixed by the seed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from training.split import stratified_split
from training.stages.fit import balanced_class_weights


def test_split_is_stratified_disjoint_and_complete() -> None:
    labels = ["a"] * 100 + ["b"] * 50 + ["c"] * 10
    train, val, test = stratified_split(labels, (0.1, 0.2), seed=3)
    assert sorted(train + val + test) == list(range(len(labels)))
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert Counter(labels[i] for i in val) == {"a": 10, "b": 5, "c": 1}
    assert Counter(labels[i] for i in test) == {"a": 20, "b": 10, "c": 2}


def test_split_depends_only_on_seed() -> None:
    labels = [str(i % 4) for i in range(80)]
    assert stratified_split(labels, (0.25,), 1) == stratified_split(labels, (0.25,), 1)
    assert stratified_split(labels, (0.25,), 1) != stratified_split(labels, (0.25,), 2)


def test_every_label_keeps_a_training_row() -> None:
    labels = ["a", "a", "b", "b", "b", "b", "b", "b", "b", "b"]
    train, val, test = stratified_split(labels, (0.5, 0.5 - 1e-9), seed=0)
    assert {labels[i] for i in train} == {"a", "b"}


def test_bad_fractions() -> None:
    with pytest.raises(ValueError):
        stratified_split(["a", "b"], (0.6, 0.5), 0)


def test_balanced_class_weights() -> None:
    w = balanced_class_weights(np.array([0, 0, 0, 1]), 3)
    np.testing.assert_allclose(w, [4 / 6, 2.0, 1.0])
