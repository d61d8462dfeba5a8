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

A model whose ``metadata.json`` describes its tokenizer with a ``pattern`` (a regular
expression whose matches are the tokens) is tokenized with that pattern instead.
Punctuation is not a token: the word vectorizers drop it, so removing it would measure nothing.
"""

from __future__ import annotations

import re
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


@lru_cache(maxsize=32)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def tokenizer_pattern(metadata_tokenizer: Any) -> str:
    """The pattern for a model whose metadata.json ``tokenizer`` entry is ``metadata_tokenizer``.

    Used when the entry is a mapping with a string ``pattern`` that compiles; else the default.
    """
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
    """(start, end) of each token of ``text``, in order; empty matches are skipped."""
    return [m.span() for m in _compiled(pattern).finditer(text) if m.end() > m.start()]


def without_span(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` removed; one of two spaces left around it goes too."""
    before, after = text[:start], text[end:]
    if before[-1:].isspace() and after[:1].isspace():
        after = after[1:]
    return before + after
