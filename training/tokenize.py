"""The token rule: how text becomes the tokens a model's vectorizers see, for the graph and the
explainer alike.

A rule is data (metadata.json records it as ``tokenizer.rule``): lower-case, then RE2
substitutions in order, then a split on whitespace. The graph runs it with ``tf.strings`` ops
(the exported SavedModel traces them, so loading needs no custom op library); the explainer
runs the very same ops on a text and maps the tokens back to character offsets of the
original, so the tokens it weighs are the tokens the model saw.

The script-aware rule every built-in architecture uses: scripts written without spaces
between words (Han, kana, Thai, ...) have no word boundary a whitespace split can find, so
each of their characters becomes a token of its own (word-n-gram vectorizers then see
character bigrams). Scripts written with spaces (Latin, Cyrillic, Greek, Hangul, Arabic,
digits, ...) keep word tokens. Symbols such as emoji are tokens of their own, punctuation of
every script separates tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
# What Keras's TextVectorization does by default (ASCII lower case, ASCII punctuation
# removed): the rule of a model that records none.
_KERAS_PUNCTUATION_RE = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'


@dataclass(frozen=True, kw_only=True)
class TokenRule:
    """Lower-case (``lowercase``: the encoding tf.strings.lower reads, "" for ASCII only,
    None for none), then each (RE2 pattern, replacement) in order, then a whitespace split."""

    lowercase: str | None
    replace: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "lowercase": self.lowercase,
            "replace": [list(r) for r in self.replace],
            "split": "whitespace",
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TokenRule:
        return cls(
            lowercase=data.get("lowercase"),
            replace=tuple((str(p), str(r)) for p, r in data.get("replace", ())),
        )

    def lower(self, text: Any) -> tf.Tensor:
        if self.lowercase is None:
            return tf.convert_to_tensor(text, tf.string)
        if self.lowercase:
            return tf.strings.lower(text, encoding=self.lowercase)
        return tf.strings.lower(text)

    def standardize(self, text: Any) -> tf.Tensor:
        """The rule up to the split: what TextVectorization's ``standardize`` runs."""
        text = self.lower(text)
        for pattern, replacement in self.replace:
            text = tf.strings.regex_replace(text, pattern, replacement)
        return text

    def tokenize(self, text: Any) -> tf.RaggedTensor:
        """``standardize`` then whitespace split: a ragged [batch, tokens] string tensor."""
        return tf.strings.split(self.standardize(text))


SCRIPT_AWARE = TokenRule(
    lowercase="utf-8",
    replace=((_PUNCTUATION_RE, " "), (_OWN_TOKEN_RE, r" \1 ")),
)
KERAS_DEFAULT = TokenRule(lowercase="", replace=((_KERAS_PUNCTUATION_RE, ""),))

DESCRIPTION = {
    "name": "script-aware",
    "version": 1,
    "lowercase": True,
    "punctuation": "removed (every script)",
    "character_tokens": list(UNSPACED_SCRIPTS) + ["symbols (\\p{S}, e.g. emoji)"],
    "word_tokens": "whitespace-separated runs of every other script and of digits",
    "rule": SCRIPT_AWARE.to_json(),
}


def standardize(text: Any) -> tf.Tensor:
    """The script-aware rule up to the split (the vectorizers' ``standardize``)."""
    return SCRIPT_AWARE.standardize(text)


def tokenize(text: Any) -> tf.RaggedTensor:
    """The script-aware rule's tokens: a ragged [batch, tokens] string tensor."""
    return SCRIPT_AWARE.tokenize(text)


def rule_of(tokenizer: Mapping[str, Any] | None) -> TokenRule:
    """The rule a model's metadata.json ``tokenizer`` entry records: its ``rule``; for a model
    recorded before the rule was (the script-aware tokenizer, or the encoder whose n-gram
    features use it) the script-aware rule; with no entry, Keras's default."""
    if not tokenizer:
        return KERAS_DEFAULT
    if isinstance(tokenizer.get("rule"), Mapping):
        return TokenRule.from_json(tokenizer["rule"])
    if tokenizer.get("name") in ("script-aware", "sentencepiece"):
        return SCRIPT_AWARE
    return KERAS_DEFAULT


def token_spans(text: str, rule: TokenRule = SCRIPT_AWARE) -> list[tuple[int, int]]:
    """(start, end) character offsets in ``text`` of each token ``rule`` makes of it, in order.

    The tokens come from the rule's own tf.strings ops; each is then found in the lower-cased
    text after the previous one (a token is the text's characters minus what the rule
    removed, so it is matched character by character, skipping removed ones).
    """
    tokens = [t.decode("utf-8") for t in rule.tokenize(tf.constant([text]))[0].numpy()]
    lowered, offsets = _lowered(text, rule)
    spans: list[tuple[int, int]] = []
    pos = 0
    for token in tokens:
        start = lowered.find(token[0], pos)
        if start < 0:
            break
        end, k = start, 0
        while end < len(lowered) and k < len(token):
            k += lowered[end] == token[k]
            end += 1
        spans.append((offsets[start], offsets[end]))
        pos = end
    return spans


def _lowered(text: str, rule: TokenRule) -> tuple[str, list[int]]:
    """``text`` lower-cased as the rule does it, and each of its characters' offset in
    ``text`` (plus the end): the identity unless lower-casing changed the length."""
    whole = rule.lower(tf.constant(text)).numpy().decode("utf-8")
    if len(whole) == len(text):
        return whole, list(range(len(text) + 1))
    chars = rule.lower(tf.strings.unicode_split(text, "UTF-8")).numpy()
    pieces = [c.decode("utf-8") for c in chars]
    offsets = [i for i, piece in enumerate(pieces) for _ in piece] + [len(text)]
    return "".join(pieces), offsets
