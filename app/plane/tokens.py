"""Token spans of a text as the models tokenize it, in character offsets of the original string.

The exported models take raw strings and tokenize inside the graph, so the explainer repeats
that tokenization here to know what to remove. Two rules cover every architecture the trainer
builds, before and after the per-script tokenizer (issue 13) lands:

- words: runs of letters and digits, apostrophes inside a word kept (``haven't``), which is
  what ``TextVectorization``'s default (strip punctuation, split on whitespace) makes of a
  spaced text;
- characters of scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer,
  Myanmar) are one token each, as the per-script tokenizer makes them; a Chinese clause is
  then not one opaque "word" but the characters the model scores.

A model whose ``metadata.json`` records the trainer's ``script-aware`` tokenizer (issue 13:
``training/tokenize.py``) is tokenized by its rules: punctuation of every script separates
tokens (``haven't`` is ``haven`` and ``t``), each character of an unspaced script and each
symbol (emoji) is a token with the combining marks on it, the rest are words. A model whose
``tokenizer`` entry has a ``pattern`` (a regular expression whose matches are the tokens) is
tokenized with that pattern. Punctuation is never a token: the vectorizers drop it, so removing
it would measure nothing.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

# Scripts written without spaces between words: each character is a token.
UNSPACED = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003134f"  # CJK extensions B-H
)
_WORD = rf"[^\W{UNSPACED}]+"
DEFAULT_PATTERN = rf"[{UNSPACED}]|{_WORD}(?:['\u2019]{_WORD})*"
# The rule name metadata.json records for training.tokenize, used in place of a pattern.
SCRIPT_AWARE = "script-aware"
# training.tokenize's unspaced scripts beyond UNSPACED: Bopomofo, Tibetan, Yi.
_OWN_CHARACTER = re.compile(
    rf"[{UNSPACED}\u3100-\u312f\u31a0-\u31bf\u0f00-\u0fff\ua000-\ua4cf\u30fc]"
)


@lru_cache(maxsize=32)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def tokenizer_entry(metadata: Any) -> Any:
    """metadata.json's ``tokenizer`` entry: a declared field once the trainer records it
    (issue 13), an extra field before; None when there is none."""
    if metadata is None:
        return None
    declared = getattr(metadata, "tokenizer", None)
    if declared:
        return declared
    return (getattr(metadata, "model_extra", None) or {}).get("tokenizer")


def tokenizer_pattern(metadata_tokenizer: Any) -> str:
    """The rule for a model whose metadata.json ``tokenizer`` entry is ``metadata_tokenizer``:
    ``SCRIPT_AWARE`` for the trainer's script-aware tokenizer, the entry's ``pattern`` when it
    is a string that compiles, else the default pattern."""
    if isinstance(metadata_tokenizer, dict) and metadata_tokenizer.get("name") == SCRIPT_AWARE:
        return SCRIPT_AWARE
    if isinstance(metadata_tokenizer, dict):
        pattern = metadata_tokenizer.get("pattern")
        if isinstance(pattern, str) and pattern:
            try:
                _compiled(pattern)
            except re.error:
                return DEFAULT_PATTERN
            return pattern
    return DEFAULT_PATTERN


def token_spans(text: str, pattern: str = DEFAULT_PATTERN) -> list[tuple[int, int]]:
    """(start, end) of each token of ``text``, in order; empty matches are skipped.

    ``pattern`` is a regular expression, or ``SCRIPT_AWARE``.
    """
    if pattern == SCRIPT_AWARE:
        return script_aware_spans(text)
    return [m.span() for m in _compiled(pattern).finditer(text) if m.end() > m.start()]


def script_aware_spans(text: str) -> list[tuple[int, int]]:
    """Tokens as training.tokenize makes them (its RE2 classes by Unicode category here)."""
    spans: list[tuple[int, int]] = []
    start: int | None = None  # of the word being read
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        category = unicodedata.category(ch)
        if _OWN_CHARACTER.match(ch) or category[0] == "S":
            if start is not None:
                spans.append((start, i))
                start = None
            end = i + 1
            while end < n and unicodedata.category(text[end])[0] == "M":
                end += 1  # combining marks stay with the character they sit on
            spans.append((i, end))
            i = end
            continue
        if ch.isspace() or category[0] in "PZC":
            if start is not None:
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
        i += 1
    if start is not None:
        spans.append((start, n))
    return spans


def without_span(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` removed; one of two spaces left around it goes too."""
    before, after = text[:start], text[end:]
    if before[-1:].isspace() and after[:1].isspace():
        after = after[1:]
    return before + after
