"""Token spans: words of spaced scripts, one token per character of unspaced ones."""

from __future__ import annotations

from app.plane.tokens import (
    DEFAULT_PATTERN,
    SCRIPT_AWARE,
    token_spans,
    tokenizer_entry,
    tokenizer_pattern,
    without_span,
)


def tokens(text: str, pattern: str = DEFAULT_PATTERN) -> list[str]:
    return [text[s:e] for s, e in token_spans(text, pattern)]


def test_words_keep_inner_apostrophes_and_drop_punctuation() -> None:
    assert tokens("I haven't got my card, 2 days!") == [
        "I",
        "haven't",
        "got",
        "my",
        "card",
        "2",
        "days",
    ]
    assert tokens("don\u2019t   stop") == ["don\u2019t", "stop"]
    assert tokens("?!  ...") == []


def test_unspaced_scripts_are_one_token_per_character_and_mixed_text_works() -> None:
    assert tokens("我的iPhone屏幕碎了") == ["我", "的", "iPhone", "屏", "幕", "碎", "了"]
    assert tokens("カードをなくした") == list("カードをなくした")
    assert tokens("บัตรหาย") == list("บัตรหาย")  # Thai: code points, as tf unicode_split
    assert tokens("Привет мир 카드 분실") == ["Привет", "мир", "카드", "분실"]  # spaced scripts


def test_offsets_index_the_original_string() -> None:
    text = "  my 卡 lost\u00a0card😀ok"
    for (start, end), tok in zip(token_spans(text), tokens(text), strict=True):
        assert text[start:end] == tok
    assert tokens(text) == ["my", "卡", "lost", "card", "ok"]


def test_a_pattern_in_metadata_replaces_the_default() -> None:
    assert tokenizer_pattern({"pattern": r"\S+"}) == r"\S+"
    assert tokens("a,b c", tokenizer_pattern({"pattern": r"\S+"})) == ["a,b", "c"]
    for unusable in (None, "script-aware", {"pattern": "("}, {"name": "x"}, {"pattern": ""}):
        assert tokenizer_pattern(unusable) == DEFAULT_PATTERN


def test_removing_a_token_leaves_no_double_space() -> None:
    assert without_span("my new card", 3, 6) == "my card"
    assert without_span("my card", 0, 2) == " card"
    assert without_span("我的卡", 1, 2) == "我卡"


def test_the_script_aware_tokenizer_of_metadata_json_is_followed() -> None:
    rule = tokenizer_pattern({"name": "script-aware", "version": 1})
    assert rule == SCRIPT_AWARE
    assert tokens("I haven't got my card, 2 days!", rule) == [
        "I", "haven", "t", "got", "my", "card", "2", "days",
    ]  # fmt: skip
    assert tokens("我的iPhone屏幕碎了！", rule) == ["我", "的", "iPhone", "屏", "幕", "碎", "了"]
    assert tokens("card😀ok", rule) == ["card", "😀", "ok"]
    assert tokens("บัตรหาย", rule) == ["บั", "ต", "ร", "ห", "า", "ย"]  # marks stay on
    assert tokens("コーヒー", rule) == ["コ", "ー", "ヒ", "ー"]
    text = " a–b 「卡」"
    for (start, end), tok in zip(token_spans(text, rule), tokens(text, rule), strict=True):
        assert text[start:end] == tok
    assert tokens(text, rule) == ["a", "b", "卡"]


def test_the_tokenizer_entry_is_read_declared_or_extra() -> None:
    from types import SimpleNamespace

    entry = {"name": "script-aware"}
    assert tokenizer_entry(SimpleNamespace(tokenizer=entry, model_extra={})) == entry
    assert tokenizer_entry(SimpleNamespace(model_extra={"tokenizer": entry})) == entry
    assert tokenizer_entry(SimpleNamespace(tokenizer={}, model_extra={})) is None
    assert tokenizer_entry(None) is None
