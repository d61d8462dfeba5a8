"""The token-sequence vectorizer shared by cnn, textcnn and transformer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keras import layers

from training import tokenize
from training.params import ModelParams


def make_vectorizer(train_texts: Sequence[str], p: ModelParams) -> layers.TextVectorization:
    """A TextVectorization adapted on the training texts only (never on val/test)."""
    vectorizer = layers.TextVectorization(
        max_tokens=p.max_tokens,
        output_mode="int",
        output_sequence_length=p.sequence_length,
        ngrams=p.ngrams if p.ngrams > 1 else None,
        standardize=tokenize.standardize,
        name="vectorizer",
    )
    vectorizer.adapt(np.asarray(train_texts, dtype=object), batch_size=1024)
    return vectorizer
