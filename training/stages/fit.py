"""Stage fit: build ``cfg.arch`` on the training texts and fit it.

With val rows: early stopping on them (guarded, see GuardedEarlyStopping) and a learning rate
that drops on plateaus. Without: exactly ``epochs`` epochs at a constant learning rate (the
refits, whose epoch count held-out rows chose under the same schedule).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.config import TrainConfig
from training.stages.trainee import Trainee, default_trainee, replica_trainee, strategy_scope

# Up to this many training rows (default strategy) the string layers' outputs of every row
# are computed once and kept (sparse n-gram counts: ~5 KB a row); above, the model trains on
# the strings as they are, vectorizing per step.
PRECOMPUTE_MAX_ROWS = 20_000
Log = Callable[[str], None]
# (texts, on_epoch): after every epoch on_epoch(epoch, probabilities of texts, their member
# log-probabilities or None: Trainee.predict_members); True stops.
Watch = tuple[list[str], Callable[[int, np.ndarray, Any], bool]]


@dataclass(kw_only=True)
class FitInput:
    """What one fit trains on and how long."""

    texts: list[str]
    y: np.ndarray
    n_labels: int
    val: tuple[list[str], np.ndarray] | None = None  # early stopping on these rows
    epochs: int | None = None  # default: cfg.epochs
    verbose: bool | None = None  # per-epoch lines; default: cfg.verbose
    features: Any | None = None  # the run's features cache (Architecture.make_features)
    watch: Watch | None = None
    learning_rates: list[float] | None = None  # per epoch: a refit replaying a run's schedule
    member_epochs: list[int] | None = None  # a product of experts: each member's (MemberSnapshots)
    # LinearMembers fitted as logistic regressions (the k-fold and its refit); False: trained
    # by the steps like any layer (training.stages.linear_members says why)
    linear_members: bool = False


@dataclass
class Fitted:
    """The stage's output: the fitted model and what its fit did."""

    model: Any
    epochs_run: int
    best_epoch: int
    fit_seconds: float
    replicas: int
    trainee: Trainee  # predicts as the model does, from inputs computed once per call
    learning_rates: list[float] = field(default_factory=list)  # per epoch run
    # Each LinearMember's regression strength, by layer name, where the fit fitted them
    linear_strengths: dict[str, float | None] = field(default_factory=dict)

    def predict(self, texts: list[str]) -> np.ndarray:
        """The fitted model's probabilities (before calibration) of ``texts``."""
        return self.trainee.predict(texts)


def balanced_class_weights(y: np.ndarray, n_labels: int) -> np.ndarray:
    """``n / (k * count)`` per class: rare classes weigh more, balanced data gets ~1."""
    counts = np.bincount(y, minlength=n_labels).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_labels)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def row_weights(cfg: TrainConfig, y: np.ndarray, n_labels: int) -> np.ndarray | None:
    """Each training row's weight under ``--class-weights`` (its label's), else None."""
    if not cfg.class_weights:
        return None
    return balanced_class_weights(y, n_labels)[y].astype(np.float32)


def _dataset(cfg: TrainConfig, x: Any, y: np.ndarray, n_labels: int, train: bool) -> Any:
    """Batches of (inputs, one-hot labels[, weights]); ``x``: every row's inputs (texts as a
    string tensor, or what ``Trainee.inputs`` made of them)."""
    import tensorflow as tf

    w = row_weights(cfg, y, n_labels) if train else None
    if w is not None:
        ds = tf.data.Dataset.from_tensor_slices((x, y, w))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
    if train:
        ds = ds.shuffle(len(y), seed=cfg.seed, reshuffle_each_iteration=True)
    ds = ds.batch(cfg.batch_size)
    ds = ds.map(lambda x, y, *w: (x, tf.one_hot(y, n_labels), *w))
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclass
class _Built:
    trainee: Trainee  # predicts
    fit_model: Any  # is fit (the trainee's model, or on replicas the shared-weight body)
    per_batch: Callable[[Any], Any]  # tf.data map to what fit_model takes
    replicas: int
    model: Any  # the string-in model that gets exported
    train_x: Any = None  # the training rows as fit_model's inputs
    val_x: Any = None


def _build(cfg: TrainConfig, job: FitInput) -> _Built:
    """The model and how it is fed, under the run's tf.distribute strategy."""
    from training.model import build_model

    with strategy_scope(cfg.strategy) as replicas:
        model = build_model(cfg.arch, job.texts, job.n_labels, cfg.params, features=job.features)
        if cfg.strategy != "default":
            body, per_batch = replica_trainee(model, job.texts)
            built = _Built(Trainee.on_strings(model), body, per_batch, replicas, model)
        elif job.features is None and len(job.texts) > PRECOMPUTE_MAX_ROWS:
            trainee = Trainee.on_strings(model)
            built = _Built(trainee, model, lambda ds: ds, replicas, model)
        else:
            # The body trains on inputs computed once here (vectorized texts, cached features).
            trainee = default_trainee(model, job.texts, job.features)
            built = _Built(trainee, trainee.model, lambda ds: ds, replicas, model)
        built.train_x = built.trainee.inputs(job.texts)
        built.val_x = built.trainee.inputs(job.val[0]) if job.val else None
    return built


def _fit_linear_members(cfg: TrainConfig, job: FitInput, built: _Built) -> dict[str, float | None]:
    """The members on frozen features: logistic regressions (their strengths, by layer name),
    or (``job.linear_members`` False) layers the steps train (training.stages.linear_members)."""
    from training.architectures.experts import LinearMember
    from training.stages.linear_members import fit_linear_members

    members = [x for x in built.model._flatten_layers() if isinstance(x, LinearMember)]
    if not job.linear_members:
        for layer in members:  # before the first step traces the trainable variables
            layer.trainable = True
        return {}
    weights = row_weights(cfg, job.y, job.n_labels)
    strengths = fit_linear_members(built.trainee.model, built.train_x, job.y, weights)
    if len(members) > len(strengths):  # no path but the one-replica head reaches them
        raise RuntimeError(f"{cfg.arch}: members on frozen features need the default strategy")
    return strengths


def _callbacks(cfg: TrainConfig, job: FitInput, trainee: Trainee, log: Log) -> list[Any]:
    """Rate recording (and replay), the watch, early stopping and LR drops, epoch lines."""
    from training.progress import EpochLog, GuardedEarlyStopping, RecordRate, WatchTexts

    cbs: list[Any] = [RecordRate(job.learning_rates)]
    if job.watch is not None:
        watched, on_epoch = job.watch
        cbs.append(WatchTexts(trainee.inputs(watched), trainee.predict_members, on_epoch))
    if job.member_epochs is not None:
        from training.architectures.experts import member_weights
        from training.stages.members import MemberSnapshots

        cbs.append(MemberSnapshots(member_weights(trainee.model), job.member_epochs))
    if job.val is not None:
        import keras

        mode = "min" if cfg.monitor == "val_loss" else "max"
        cbs.append(
            GuardedEarlyStopping(
                job.n_labels,
                monitor=cfg.monitor,
                mode=mode,
                patience=cfg.patience,
                restore_best_weights=True,
            )
        )
        if cfg.reduce_lr_patience:
            cbs.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss",
                    factor=cfg.reduce_lr_factor,
                    patience=cfg.reduce_lr_patience,
                    min_lr=cfg.params.learning_rate / 100,
                )
            )
    if cfg.verbose if job.verbose is None else job.verbose:
        cbs.append(EpochLog(job.epochs or cfg.epochs, log))
    return cbs


def fit(cfg: TrainConfig, job: FitInput, log: Log) -> Fitted:
    """Build the model and fit it on ``job``'s rows; see the module docstring."""
    import keras
    import tensorflow as tf

    from training.progress import GuardedEarlyStopping, RecordRate

    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    built = _build(cfg, job)
    strengths = _fit_linear_members(cfg, job, built)
    cbs = _callbacks(cfg, job, built.trainee, log)
    started = time.monotonic()
    history = built.fit_model.fit(
        built.per_batch(_dataset(cfg, built.train_x, job.y, job.n_labels, train=True)),
        validation_data=(
            built.per_batch(_dataset(cfg, built.val_x, job.val[1], job.n_labels, train=False))
            if job.val
            else None
        ),
        epochs=job.epochs or cfg.epochs,
        callbacks=cbs,
        shuffle=False,  # the tf.data pipeline shuffles, with the seed
        verbose=0,
    )
    epochs_run = len(history.history["loss"])
    guard = next((c for c in cbs if isinstance(c, GuardedEarlyStopping)), None)
    rates = next(c for c in cbs if isinstance(c, RecordRate)).rates
    return Fitted(
        built.model,
        epochs_run,
        (guard.best_epoch_number if guard else None) or epochs_run,
        time.monotonic() - started,
        built.replicas,
        built.trainee,
        rates,
        strengths,
    )
