"""Script-aware tokenization: unspaced scripts split into characters, others into words; the
explainer's tokens are those every architecture's vectorizers see."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import tensorflow as tf

from app.plane.tokens import model_token_spans
from tests.model_factory import TINY_PARAMS
from training import architectures
from training.model import build_model
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


EXPLAINED = {
    "english": "I haven't got my card, 2 days!",
    "chinese": "我的iPhone屏幕碎了！怎么办？",
    "thai": "ลืมรหัสผ่านครับ",
    "mixed": "Mój 卡 lost\u00a0card — カードを「返金」して, Привет 카드 İstanbul ΟΔΟΣ",
    "emoji": "card😡😡 please👍🏽 ok 🇩🇪",
}
TRAIN_TEXTS = [*EXPLAINED.values(), "where is my card", "退款", "refund please"] * 4


def _word_vectorizers(model: Any) -> list[Any]:
    """The model's TextVectorization layers that split on whitespace (its word tokens)."""
    import keras

    layers = model._flatten_layers(include_self=False, recursive=True)
    return [
        layer
        for layer in layers
        if isinstance(layer, keras.layers.TextVectorization) and layer._split == "whitespace"
    ]


def _seen(vectorizer: Any, text: str) -> list[str]:
    standardized = vectorizer._standardize(tf.constant([text]))
    return [t.decode() for t in tf.strings.split(standardized)[0].numpy()]


@pytest.mark.parametrize("arch", architectures.names())
def test_explanation_tokens_are_the_tokens_every_architecture_sees(arch: str) -> None:
    """Built as trained, each architecture's word vectorizers turn every text into exactly
    the tokens the explainer finds with the rule metadata.json records for it."""
    entry = json.loads(json.dumps(architectures.get(arch).tokenizer_description()))
    if architectures.get(arch).op_libraries:
        pytest.importorskip("tensorflow_text")
    model = build_model(
        arch,
        TRAIN_TEXTS,
        2,
        TINY_PARAMS,
        features=architectures.get(arch).make_features(TINY_PARAMS),
    )
    vectorizers = _word_vectorizers(model)
    assert vectorizers, f"{arch} has no word vectorizer"
    metadata = SimpleNamespace(tokenizer=entry, model_extra={})
    for text in EXPLAINED.values():
        spans = model_token_spans(text, metadata)
        for vectorizer in vectorizers:
            seen = _seen(vectorizer, text)
            explained = [_seen(vectorizer, text[s:e]) for s, e in spans]
            assert explained == [[token] for token in seen], (arch, text)
