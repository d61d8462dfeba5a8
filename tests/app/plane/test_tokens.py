"""Explanation tokens are the model's tokens: the rule metadata.json records, run by the same
tf.strings ops as the graph, mapped back to offsets of the original text."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from app.plane.tokens import model_token_spans, tokenizer_entry, without_span
from training.tokenize import DESCRIPTION, KERAS_DEFAULT, SCRIPT_AWARE, rule_of, token_spans

TEXTS = {
    "english": "I haven't got my card, 2 days!",
    "chinese": "我的iPhone屏幕碎了！怎么办？",
    "thai": "ลืมรหัสผ่านครับ",
    "mixed": "  Mój 卡 lost\u00a0card — カードを「返金」して, Привет 카드",
    "emoji": "card😡😡 please👍🏽 ok",
    "spaces": "你好\u3000世界\tok\u2003x",
    "case": "İstanbul ΟΔΟΣ Straße",
}


def tokens(text: str, metadata: object = None) -> list[str]:
    return [text[s:e] for s, e in model_token_spans(text, metadata)]


def meta(tokenizer: dict[str, object]) -> SimpleNamespace:
    return SimpleNamespace(tokenizer=tokenizer, model_extra={})


def test_the_script_aware_rule_of_metadata_json_is_followed() -> None:
    m = meta(DESCRIPTION)
    assert tokens(TEXTS["english"], m) == ["I", "haven", "t", "got", "my", "card", "2", "days"]
    assert tokens(TEXTS["chinese"], m) == [
        "我",
        "的",
        "iPhone",
        "屏",
        "幕",
        "碎",
        "了",
        "怎",
        "么",
        "办",
    ]
    assert tokens("card😀ok", m) == ["card", "😀", "ok"]
    assert tokens("บัตรหาย", m) == ["บั", "ต", "ร", "ห", "า", "ย"]  # marks stay on
    assert tokens("コーヒー", m) == ["コ", "ー", "ヒ", "ー"]
    assert tokens(" a–b 「卡」", m) == ["a", "b", "卡"]


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_spans_index_the_original_string_in_order(name: str) -> None:
    text = TEXTS[name]
    spans = token_spans(text, SCRIPT_AWARE)
    assert spans == sorted(spans)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))


def test_a_model_recorded_before_the_rule_gets_the_rule_its_graph_runs() -> None:
    for entry in ({"name": "script-aware", "version": 1}, {"name": "sentencepiece"}):
        assert rule_of(entry) == SCRIPT_AWARE
    assert rule_of(None) == KERAS_DEFAULT  # no entry: Keras's default standardize
    assert tokens("I haven't got it.", None) == ["I", "haven't", "got", "it"]
    assert rule_of(json.loads(json.dumps(DESCRIPTION))) == SCRIPT_AWARE


def test_removing_a_token_leaves_no_double_space() -> None:
    assert without_span("my new card", 3, 6) == "my card"
    assert without_span("my card", 0, 2) == " card"
    assert without_span("我的卡", 1, 2) == "我卡"


def test_the_tokenizer_entry_is_read_declared_or_extra() -> None:
    entry = {"name": "script-aware"}
    assert tokenizer_entry(SimpleNamespace(tokenizer=entry, model_extra={})) == entry
    assert tokenizer_entry(SimpleNamespace(model_extra={"tokenizer": entry})) == entry
    assert tokenizer_entry(SimpleNamespace(tokenizer={}, model_extra={})) is None
    assert tokenizer_entry(None) is None
