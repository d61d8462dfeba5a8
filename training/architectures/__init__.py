"""Architectures beyond the seed cnn, each a whole model (its own preprocessing) from raw strings.

``BUILDERS`` maps ``--arch`` names to ``build(train_texts, n_labels, params) -> keras.Model``
(uncompiled, string [batch] in, float32 probabilities [batch, n_labels] out);
``training.model.build_model`` compiles them like its own architectures.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from training.architectures.ensemble import Builder, build_ensemble
from training.architectures.ngram import build_ngram
from training.architectures.textcnn import build_textcnn
from training.architectures.transformer import build_transformer
from training.params import ModelParams

BUILDERS: dict[str, Builder] = {
    "ngram": build_ngram,
    "textcnn": build_textcnn,
    "transformer": build_transformer,
}


def _build_ensemble(train_texts: Sequence[str], n_labels: int, p: ModelParams) -> keras.Model:
    return build_ensemble(train_texts, n_labels, p, BUILDERS)


BUILDERS["ensemble"] = _build_ensemble
