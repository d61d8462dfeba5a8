"""Script-aware tokenization: unspaced scripts split into characters, others into words."""

from __future__ import annotations

import pytest
import tensorflow as tf

from training.tokenize import tokenize


def _tokens(text: str) -> list[str]:
    return [t.decode() for t in tokenize(tf.constant([text])).to_list()[0]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的订单到哪了？", ["我", "的", "订", "单", "到", "哪", "了"]),
        ("パスワードを忘れた", ["パ", "ス", "ワ", "ー", "ド", "を", "忘", "れ", "た"]),
        ("ありがとう", ["あ", "り", "が", "と", "う"]),
        # Thai: a consonant keeps its vowel and tone marks (combining characters).
        ("ลืมรหัส", ["ลื", "ม", "ร", "หั", "ส"]),
        ("我的iPhone屏幕碎了", ["我", "的", "iphone", "屏", "幕", "碎", "了"]),
        ("订单12345在3月5日发货", ["订", "单", "12345", "在", "3", "月", "5", "日", "发", "货"]),
        ("Where is my card?? 😡😡", ["where", "is", "my", "card", "😡", "😡"]),
        ("카드를 잃어버렸어요", ["카드를", "잃어버렸어요"]),  # Hangul keeps words
        ("Привет, мир!", ["привет", "мир"]),
        ("", []),
    ],
)
def test_tokens(text: str, expected: list[str]) -> None:
    assert _tokens(text) == expected


def test_batches_mix_scripts_with_core_tensorflow_ops_only() -> None:
    graph = tf.function(tokenize).get_concrete_function(tf.TensorSpec([None], tf.string)).graph
    # A custom op (tensorflow_text's, say) is not in tf.raw_ops: loading would need its library.
    assert all(hasattr(tf.raw_ops, op.type) for op in graph.get_operations())
    texts = tf.constant(["退款", "refund please", "返金して"])
    assert tokenize(texts).to_list() == [
        ["退".encode(), "款".encode()],
        [b"refund", b"please"],
        [c.encode() for c in "返金して"],
    ]
