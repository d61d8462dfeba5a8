"""Token spans of a text as the model tokenizes it, in character offsets of the original string.

The exported models take raw strings and tokenize inside the graph. The explainer splits a
text with the rule the model recorded (metadata.json ``tokenizer.rule``), run by the trainer's
own code with the same tf.strings (RE2) ops as the graph (training.tokenize), so the tokens it
removes are the tokens the model saw. Punctuation is never a token when the rule removes it:
removing it would measure nothing.
"""

from __future__ import annotations

from typing import Any


def tokenizer_entry(metadata: Any) -> Any:
    """metadata.json's ``tokenizer`` entry (None when there is none)."""
    if metadata is None:
        return None
    declared = getattr(metadata, "tokenizer", None)
    if declared:
        return declared
    return (getattr(metadata, "model_extra", None) or {}).get("tokenizer")


def model_token_spans(text: str, metadata: Any) -> list[tuple[int, int]]:
    """(start, end) of each token the model whose metadata is ``metadata`` makes of ``text``."""
    from training.tokenize import rule_of, token_spans

    entry = tokenizer_entry(metadata)
    return token_spans(text, rule_of(entry if isinstance(entry, dict) else None))


def without_span(text: str, start: int, end: int) -> str:
    """``text`` with ``[start, end)`` removed; one of two spaces left around it goes too."""
    before, after = text[:start], text[end:]
    if before[-1:].isspace() and after[:1].isspace():
        after = after[1:]
    return before + after
