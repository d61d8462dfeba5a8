"""Script-aware tokenization in plain TensorFlow ops, shared by every architecture.

Scripts written without spaces between words (Han, kana, Thai, ...) have no word boundary a
whitespace split can find, so each of their characters becomes a token of its own (word-n-gram
vectorizers then see character bigrams). Scripts written with spaces (Latin, Cyrillic, Greek,
Hangul, Arabic, digits, ...) keep word tokens. Symbols such as emoji are tokens of their own,
punctuation separates tokens. Only ``tf.strings`` regex ops: the exported SavedModel traces them,
so ``tf.saved_model.load`` needs no custom op library.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

# RE2 script classes (RE2 is TensorFlow's regex engine). Hangul is left out on purpose:
# Korean is written with spaces between words.
UNSPACED_SCRIPTS = (
    "Han",
    "Hiragana",
    "Katakana",
    "Bopomofo",
    "Thai",
    "Lao",
    "Khmer",
    "Myanmar",
    "Tibetan",
    "Yi",
)
_UNSPACED = "".join(rf"\p{{{s}}}" for s in UNSPACED_SCRIPTS)
# Each unspaced character, each symbol (emoji, currency, math: \p{S}) and the katakana
# prolonged-sound mark (script Common, but part of the word it follows) stands alone.
# Combining marks (Thai vowel and tone signs) stay with the character they sit on.
_OWN_TOKEN_RE = rf"([{_UNSPACED}\p{{S}}\x{{30FC}}]\p{{M}}*)"
# Punctuation of every script (ASCII and the full-width ，。！？「」) separates tokens.
_PUNCTUATION_RE = r"[\p{P}]+"

DESCRIPTION = {
    "name": "script-aware",
    "version": 1,
    "lowercase": True,
    "punctuation": "removed (every script)",
    "character_tokens": list(UNSPACED_SCRIPTS) + ["symbols (\\p{S}, e.g. emoji)"],
    "word_tokens": "whitespace-separated runs of every other script and of digits",
}


def standardize(text: Any) -> tf.Tensor:
    """Lower case, punctuation to spaces, a space on each side of every character token."""
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, _PUNCTUATION_RE, " ")
    return tf.strings.regex_replace(text, _OWN_TOKEN_RE, r" \1 ")


def tokenize(text: Any) -> tf.RaggedTensor:
    """``standardize`` then whitespace split: a ragged [batch, tokens] string tensor."""
    return tf.strings.split(standardize(text))
