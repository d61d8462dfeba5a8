"""Train tiny real models for tests (seconds, not minutes) into a model repository."""

from __future__ import annotations

from pathlib import Path

from training.config import TrainConfig
from training.params import ModelParams
from training.train import train

TINY_PARAMS = ModelParams(
    max_tokens=2000,
    sequence_length=24,
    embedding_dim=16,
    filters=16,
    kernel_sizes=(2,),
    dense_units=16,
    dropout=0.1,
    learning_rate=1e-2,
    embedding_dropout=0.0,
    label_smoothing=0.0,
    towers=1,
    encoders=(
        "use",
    ),  # the fast one: e5 has its own session model (tests/training/test_encoders.py)
)


def tiny_config(
    model_dir: Path, name: str | None = "example", seed: int = 0, **overrides: object
) -> TrainConfig:
    """A TrainConfig on the bundled example data with tiny settings; overrides replace fields."""
    cfg = TrainConfig(
        model_dir=model_dir,
        name=name,
        arch="cnn",  # the suite's shared tiny model stays the seed cnn (fast, well known)
        params=TINY_PARAMS,
        epochs=6,
        patience=2,
        batch_size=32,
        # The suite's shared models hold a val split out (one fit); kfold has its own tests.
        validation="split",
        refit=False,  # one fit per shared model; the refit has its own tests (test_pipeline)
        seed=seed,
        verbose=False,
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def train_tiny_model(model_dir: Path, name: str = "example", seed: int = 0) -> Path:
    """Train a tiny model on the bundled example data into ``model_dir/name/<next version>``.

    Returns the new version folder. Each call adds a version (1, 2, ...), which is what the
    serving tests use to exercise hot reload.
    """
    return train(tiny_config(model_dir, name, seed), log=lambda _message: None)
