"""Out-of-scope scoring: fallbacks count as wrong in scope and as recalled out of scope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data import EXAMPLE_DIR, DataError
from training.oos import load_oos_texts, score_oos


def test_score_oos_at_a_threshold() -> None:
    in_probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.55, 0.45], [0.2, 0.8]])
    in_y = np.array([0, 1, 0, 0])
    oos_probs = np.array([[0.5, 0.5], [0.95, 0.05], [0.3, 0.7]])
    m = score_oos(in_probs, in_y, oos_probs, threshold=0.58)
    # Right: rows 0, 1, 2; row 2 falls back (0.55 < 0.58), so 2 of 4 count.
    assert m["in_scope_accuracy"] == pytest.approx(0.5)
    assert m["in_scope_accuracy_without_fallback"] == pytest.approx(0.75)
    assert m["in_scope_fallback_rate"] == pytest.approx(0.25)
    # OOS rows 0 (0.5) falls back; 1 (0.95) and 2 (0.7) do not.
    assert m["oos_recall"] == pytest.approx(1 / 3)


def test_bundled_oos_examples_load() -> None:
    texts = load_oos_texts(EXAMPLE_DIR / "support_chat_oos.csv")
    assert 50 <= len(texts) <= 80
    assert len(set(texts)) == len(texts)


def test_oos_file_without_the_text_column_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "oos.csv"
    path.write_text("message\nhello\n", encoding="utf-8")
    with pytest.raises(DataError, match="no 'text' column"):
        load_oos_texts(path)


def test_oos_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "oos.jsonl"
    path.write_text('{"text": "what is the weather"}\n\n{"text": " hi "}\n', encoding="utf-8")
    assert load_oos_texts(path) == ["what is the weather", "hi"]
