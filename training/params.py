"""Model hyperparameters, declared as settings: free of Keras, so the CLI shows them fast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from training.settings import recorded_params, setting

# --encoders: the pretrained sentence encoders the encoder architecture can put beside its
# n-gram features (training.architectures.encoder.ENCODER_LAYERS builds each).
ENCODERS = ("use", "e5")


@dataclass(kw_only=True)
class ModelParams:
    """Hyperparameters shared by the architectures; each reads the ones its registry entry
    names (training.architectures), and a flag the chosen one does not read is reported.

    The defaults are tuned on BANKING77 (docs/results/accuracy.md).
    """

    max_tokens: int = setting(20000, min=2, help="Vocabulary size.")
    sequence_length: int = setting(48, min=1, help="Tokens kept per text.")
    ngrams: int = setting(1, min=1, help="Word n-grams in the vocabulary (1: words only).")
    embedding_dim: int = setting(128, min=1, help="Embedding width.")
    filters: int = setting(128, min=1, help="Conv1D filters per kernel size.")
    kernel_sizes: Sequence[int] = setting(
        (1, 2, 3), min=1, help="Comma-separated Conv1D kernel sizes, one branch each."
    )
    dense_units: int = setting(128, min=1, help="Hidden dense units.")
    dropout: float = setting(0.5, min=0.0, max=0.95, help="Dropout before the output layer.")
    embedding_dropout: float = setting(
        0.2, min=0.0, max=0.95, help="Spatial dropout on the embeddings."
    )
    label_smoothing: float = setting(0.1, min=0.0, max=0.5, help="Label smoothing in the loss.")
    towers: int = setting(
        2, min=1, help="cnn: independently trained copies, averaged (an ensemble)."
    )
    learning_rate: float = setting(1e-3, min=0.0, help="Adam's learning rate.")
    # Off by default: fine-tuning scored below the frozen encoder on development rows of both
    # corpora, at up to twice the training time (docs/results/accuracy.md).
    fine_tune: bool = setting(
        False, help="encoder: train its DAN layers (after the frozen token CNN) with the head."
    )

    # use: use,e5 scored within a point of it on development rows at 12-16x the CPU per text
    # in training and serving (docs/results/e5-encoder.md), so e5 is a choice, not the default.
    encoders: Sequence[str] = setting(
        ("use",),
        choices=ENCODERS,
        help="encoder: comma-separated pretrained encoders whose features go side by side "
        "beside the n-grams: use (USE multilingual v3, fast), e5 (multilingual-e5-small, "
        "12 layers, ~20x slower to encode).",
    )
    e5_prefix: Literal["query", "passage"] = setting(
        "query",
        help='encoder with e5: the prefix e5 reads before each text ("query: " or "passage: ").',
    )

    def as_dict(self) -> dict[str, Any]:
        return recorded_params(self)
