"""The training pipeline, in named stages: prepare, (cross-validate,) build and fit, calibrate
and choose the threshold, evaluate, package (a versioned artifact).

Two ways to get held-out predictions for calibration, the fallback threshold and the report:
``split`` holds val (and test) rows out of training, ``kfold`` trains one model per fold and
predicts each row with the model that did not see it, then refits on every row for the
number of epochs the folds found best. ``auto`` uses kfold on small files (every labelled row
ends in the published model; a 10%-split of 10 rows per label would hold out one per label).
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from training import artifact
from training.data import DataError, Dataset, load_dataset
from training.params import ModelParams
from training.split import stratified_split

EXAMPLE_DIR = Path(__file__).resolve().parent / "example_data"
EXAMPLE_TRAIN = EXAMPLE_DIR / "support_chat_train.csv"
EXAMPLE_TEST = EXAMPLE_DIR / "support_chat_test.csv"
EXAMPLE_NAME = "example"

Strategy = Literal["default", "mirrored", "multiworker"]
Validation = Literal["auto", "split", "kfold"]

# auto picks kfold up to this many rows without --val-data: k+1 fits of ngram on 2,310 rows
# (BANKING77, 30 per label) take ~2.5 minutes on 2 cores, the encoder's ~1.5 (README), and a
# 10% val split of a larger file is >= 400 rows.
KFOLD_MAX_ROWS = 4000
# Held-out predictions fewer than this (and than 3 per label) are too few to fit a temperature
# or a threshold on: a 10% split of 10 rows per label holds one row per label out.
MIN_HELD_OUT = 50
MIN_HELD_OUT_PER_LABEL = 3
# Labels with fewer training rows than this get a warning naming them.
FEW_EXAMPLES = 5
# kfold: epochs whose out-of-fold accuracy is within this of the best count as tied; the tie
# goes to the lowest out-of-fold loss (a later, more confident epoch, not an under-trained one).
EPOCH_TIE = 0.005
# fit (default strategy): up to this many training rows the string layers' outputs of every row
# are computed once and kept (sparse n-gram counts: ~5 KB a row); above, the model trains on
# the strings as they are, vectorizing per step.
PRECOMPUTE_MAX_ROWS = 20_000
# kfold: the most epochs is raised so that a fold takes at least this many optimizer steps:
# 30 epochs of 288 rows are 270 steps, too few for the default learning rate to converge.
KFOLD_MIN_STEPS = 800


def _print(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


@dataclass
class TrainConfig:
    """Everything one training run needs; ``textcls train`` flags map onto these fields."""

    data: Path | None = None  # None: the bundled example (and its held-out test file)
    model_dir: Path = Path("./models")
    name: str | None = None  # default: from the data file's name
    fmt: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    val_data: Path | None = None
    test_data: Path | None = None
    oos_data: Path | None = None  # out-of-scope texts scored after training (training.oos)
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    # auto: the pretrained encoder on small data (when its extra is installed), else ngram, the
    # most accurate from-scratch model on BANKING77 and the fastest to serve (README Results).
    arch: str = "auto"
    params: ModelParams = field(default_factory=ModelParams)
    epochs: int = 30
    patience: int = 4
    monitor: Literal["val_loss", "val_accuracy"] = "val_accuracy"
    reduce_lr_patience: int = 2  # 0: constant learning rate
    reduce_lr_factor: float = 0.3
    batch_size: int = 32
    # Off: on imbalanced data (waimai, 1/3 positive) balanced weights cost 1.3 points of accuracy
    # and 1.1 of macro-F1; on BANKING77 the two are within 0.2 points (README Results).
    class_weights: bool = False
    target_precision: float = 0.95
    # A threshold sending more than this share of held-out messages to a person is reported
    # and capped here (the kept share's precision is then below target, and said so).
    max_fallback_rate: float = 0.4
    validation: Validation = "auto"
    # split: once the val rows chose the epochs, train again on train + val rows for as many
    # epochs (the same learning rates); the published model has then seen every labelled row
    # of --data. None: the architecture's default (Architecture.refit: on for the encoder).
    # Off, or with --val-data, the model that early stopping kept is published.
    refit: bool | None = None
    folds: int = 5
    seed: int = 0
    deterministic: bool = False
    strategy: Strategy = "default"
    verbose: bool = True


@dataclass
class Splits:
    """Texts and label indices for train, val and test, plus where they came from."""

    labels: list[str]
    texts: dict[str, list[str]]
    y: dict[str, np.ndarray]
    sources: dict[str, str]


def name_from_path(path: Path) -> str:
    """A valid model name from a file name: ``Bank Chats (v2).csv`` -> ``Bank-Chats-v2``."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-._")[:64]
    return artifact.validate_name(name or "model")


def _load(path: Path, cfg: TrainConfig, min_examples: int) -> Dataset:
    return load_dataset(
        path,
        fmt=cfg.fmt,
        text_column=cfg.text_column,
        label_column=cfg.label_column,
        min_examples_per_label=min_examples,
    )


def _check_known(ds: Dataset, known: set[str]) -> None:
    unknown = [
        (line, lab) for lab, line in zip(ds.labels, ds.lines, strict=True) if lab not in known
    ]
    if unknown:
        raise DataError(
            ds.path,
            [(line, f"label {lab!r} does not occur in the training data") for line, lab in unknown],
        )


def choose_validation(cfg: TrainConfig, rows: int) -> Literal["split", "kfold"]:
    """``cfg.validation`` with ``auto`` resolved: kfold for small files without --val-data."""
    if cfg.validation != "auto":
        return cfg.validation
    small = rows <= KFOLD_MAX_ROWS and cfg.val_data is None
    return "kfold" if small and cfg.strategy == "default" else "split"


def prepare_splits(
    cfg: TrainConfig, log: Callable[[str], None], validation: str | None = None
) -> tuple[Splits, list[Dataset]]:
    """Load the file(s) and split (kfold: no val, and no test unless --test-data)."""
    data = cfg.data or EXAMPLE_TRAIN
    test_data = cfg.test_data if cfg.data else (cfg.test_data or EXAMPLE_TEST)
    main = _load(data, cfg, 2)
    loaded = [main]
    validation = validation or choose_validation(cfg, len(main.texts))
    kfold = validation == "kfold"
    fractions = (
        0.0 if cfg.val_data or kfold else cfg.val_fraction,
        0.0 if test_data or kfold else cfg.test_fraction,
    )
    train_idx, val_idx, test_idx = stratified_split(main.labels, fractions, cfg.seed)
    labels = sorted(set(main.labels[i] for i in train_idx))
    texts = {
        "train": [main.texts[i] for i in train_idx],
        "val": [main.texts[i] for i in val_idx],
        "test": [main.texts[i] for i in test_idx],
    }
    raw_labels = {
        "train": [main.labels[i] for i in train_idx],
        "val": [main.labels[i] for i in val_idx],
        "test": [main.labels[i] for i in test_idx],
    }
    sources = {"train": str(data), "val": f"{data} (split)", "test": f"{data} (split)"}
    for split, path in (("val", cfg.val_data), ("test", test_data)):
        if path:
            ds = _load(path, cfg, 1)
            _check_known(ds, set(labels))
            loaded.append(ds)
            texts[split], raw_labels[split], sources[split] = ds.texts, ds.labels, str(path)
    if not texts["val"] and not kfold:
        raise DataError(data, [(None, "too few rows to hold out a validation split")])
    index = {lab: k for k, lab in enumerate(labels)}
    y = {s: np.array([index[lab] for lab in raw_labels[s]], dtype=np.int64) for s in texts}
    for ds in loaded:
        for c in ds.conflicts:
            log(
                f"warning: {ds.path}: text {c.text[:60]!r} has labels {', '.join(c.labels)} "
                f"(lines {', '.join(map(str, c.lines))})"
            )
    return Splits(labels=labels, texts=texts, y=y, sources=sources), loaded


def unused_model_flags(cfg: TrainConfig, arch: str | None = None) -> list[str]:
    """``--flags`` set away from their defaults that ``arch`` (or ``cfg.arch``) does not read."""
    from training import architectures

    defaults = ModelParams().as_dict()
    changed = [k for k, v in cfg.params.as_dict().items() if v != defaults[k]]
    used = arch or cfg.arch
    return ["--" + f.replace("_", "-") for f in architectures.unused_flags(used, changed)]


def balanced_class_weights(y: np.ndarray, n_labels: int) -> np.ndarray:
    """``n / (k * count)`` per class: rare classes weigh more, balanced data gets ~1."""
    counts = np.bincount(y, minlength=n_labels).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_labels)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


@contextlib.contextmanager
def _strategy_scope(name: Strategy) -> Iterator[int]:
    """Build the model under a tf.distribute strategy; yields the number of replicas."""
    import tensorflow as tf

    if name == "default":
        yield 1
        return
    if name == "mirrored":
        # MirroredStrategy() alone mirrors over GPUs and falls back to ONE CPU; with no GPU,
        # mirror over every logical CPU device so that N CPU devices really get N replicas.
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        strategy: tf.distribute.Strategy = tf.distribute.MirroredStrategy(devices=devices)
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()  # workers from TF_CONFIG
    with strategy.scope():
        yield int(strategy.num_replicas_in_sync)


def _replica_trainee(model: Any, sample_texts: list[str]) -> tuple[Any, Callable[[Any], Any]]:
    """The compiled model body and a tf.data map to its features (training.distributed).

    Call it inside the strategy's scope: the body's compile state belongs to the strategy.
    """
    import keras

    from training.distributed import split_at_string_input, vectorize

    string_layers, body = split_at_string_input(model, sample_texts)
    body.compile(
        optimizer=model.optimizer,
        loss=model.loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )

    def features(ds: Any) -> Any:
        return ds.map(lambda x, *rest: (vectorize(string_layers, x), *rest))

    return body, features


@dataclass
class Trainee:
    """What ``fit`` trains and predicts with: the model, or (default strategy) its body on
    inputs computed once per fit, not once per step or epoch: the string layers' outputs
    (the vectorizers are deterministic) and the run's cached encoder features. The body shares
    every weight with the string-in model, which is what gets exported.
    """

    model: Any  # the compiled Keras model that is fit
    inputs: Callable[[list[str]], Any]  # texts -> that model's inputs, every row at once

    @classmethod
    def on_strings(cls, model: Any) -> Trainee:
        """``model`` itself, fed the texts as a string tensor."""
        import tensorflow as tf

        return cls(model, lambda texts: tf.constant(texts, tf.string))

    def predict(self, texts: list[str], batch_size: int = 512) -> np.ndarray:
        """Probabilities [len(texts), n_labels], as the string-in model would give them."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self.predict_inputs(self.inputs(texts), batch_size)

    def predict_inputs(self, x: Any, batch_size: int = 512) -> np.ndarray:
        """``predict`` on inputs already computed by ``inputs``."""
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
        return np.concatenate(
            [np.asarray(self.model(b, training=False), dtype=np.float32) for b in ds]
        )


def _default_trainee(model: Any, sample_texts: list[str], features: Any | None) -> Trainee:
    """One replica: cut the model (the encoder: its head) after the string layers."""
    import keras
    import tensorflow as tf

    from training.distributed import split_at_string_input, vectorize

    target = model if features is None else model.head  # head: [text, features(text)]

    def extra(texts: list[str]) -> tuple[Any, ...]:
        return () if features is None else (features(texts),)

    try:
        string_layers, body = split_at_string_input(target, sample_texts, allow_sparse=True)
    except (ValueError, AttributeError):  # an ensemble, a shared string layer: as it is
        if features is None:
            return Trainee.on_strings(model)
        string_layers, body = [], target

    def inputs(texts: list[str]) -> Any:
        x = tf.constant(texts, tf.string)
        if not string_layers:
            return (x, *extra(texts))
        vectorized = vectorize(string_layers, x)
        if features is None:
            return vectorized
        return (*tf.nest.flatten(vectorized, expand_composites=False), *extra(texts))

    if body is not model:
        body.compile(
            optimizer=model.optimizer,
            loss=model.loss,
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    return Trainee(body, inputs)


@dataclass
class Prepared:
    """Stage 1's output: the data, split, and how held-out predictions will be obtained."""

    name: str
    splits: Splits
    loaded: list[Dataset]
    validation: Literal["split", "kfold"]
    oos_texts: list[str] | None
    started: float
    arch: str  # cfg.arch with "auto" decided (training.architectures.resolve_arch)
    arch_requested: str


@dataclass
class HeldOut:
    """Predictions on rows the predicting model did not train on, and what chose the epochs."""

    split: str  # "val" (a split) or "cv" (out-of-fold)
    probs: np.ndarray
    y: np.ndarray
    epochs: int | None = None  # kfold: epochs for the refit
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fitted:
    model: Any
    epochs_run: int
    best_epoch: int
    fit_seconds: float
    replicas: int
    trainee: Trainee  # predicts as the model does, from inputs computed once per call
    learning_rates: list[float] = field(default_factory=list)  # per epoch run

    def predict(self, texts: list[str]) -> np.ndarray:
        """The fitted model's probabilities (before calibration) of ``texts``."""
        return self.trainee.predict(texts)


def few_example_labels(splits: Splits) -> dict[str, int]:
    """Labels with fewer than FEW_EXAMPLES training rows, and their counts."""
    counts = np.bincount(splits.y["train"], minlength=len(splits.labels))
    return {lab: int(c) for lab, c in zip(splits.labels, counts, strict=True) if c < FEW_EXAMPLES}


def prepare(cfg: TrainConfig, log: Callable[[str], None]) -> Prepared:
    """Stage 1: load, validate and split the data; warn about what will limit the model."""
    from training.oos import load_oos_texts

    started = time.monotonic()
    name = artifact.validate_name(
        cfg.name or (name_from_path(cfg.data) if cfg.data else EXAMPLE_NAME)
    )
    splits, loaded = prepare_splits(cfg, log)
    validation: Literal["split", "kfold"] = "kfold" if not splits.texts["val"] else "split"
    from training import architectures

    arch, why = architectures.resolve_arch(cfg.arch, splits.y["train"])
    if arch != cfg.arch:
        log(f"architecture: {arch} ({why})")
    for flag in unused_model_flags(cfg, arch):
        log(f"warning: {flag} does not apply to --arch {arch}; it is ignored")
    few = few_example_labels(splits)
    if few:
        shown = ", ".join(f"{lab} ({n})" for lab, n in sorted(few.items(), key=lambda kv: kv[1]))
        log(
            f"warning: {len(few)} label(s) have fewer than {FEW_EXAMPLES} training examples, "
            f"too few to learn reliably: {shown}"
        )
    counts = {s: len(t) for s, t in splits.texts.items()}
    how = (
        f"{min(cfg.folds, len(splits.y['train']))}-fold cross-validation, then a refit on all "
        f"{counts['train']} rows"
        if validation == "kfold"
        else f"{counts['val']} val rows held out"
    )
    log(
        f"data: {counts['train']} train, {counts['val']} val, {counts['test']} test rows, "
        f"{len(splits.labels)} labels; {how}"
    )
    oos = load_oos_texts(cfg.oos_data, cfg.text_column) if cfg.oos_data else None
    return Prepared(name, splits, loaded, validation, oos, started, arch, cfg.arch)


def _dataset(cfg: TrainConfig, x: Any, y: np.ndarray, n_labels: int, train: bool) -> Any:
    """Batches of (inputs, one-hot labels[, weights]); ``x``: every row's inputs (texts as a
    string tensor, or what ``Trainee.inputs`` made of them)."""
    import tensorflow as tf

    if train and cfg.class_weights:
        w = balanced_class_weights(y, n_labels)[y].astype(np.float32)
        ds = tf.data.Dataset.from_tensor_slices((x, y, w))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
    if train:
        ds = ds.shuffle(len(y), seed=cfg.seed, reshuffle_each_iteration=True)
    ds = ds.batch(cfg.batch_size)
    ds = ds.map(lambda x, y, *w: (x, tf.one_hot(y, n_labels), *w))
    return ds.prefetch(tf.data.AUTOTUNE)


def fit(
    cfg: TrainConfig,
    texts: list[str],
    y: np.ndarray,
    n_labels: int,
    log: Callable[[str], None],
    val: tuple[list[str], np.ndarray] | None = None,
    epochs: int | None = None,
    callbacks: list[Any] | None = None,
    verbose: bool | None = None,
    features: Any | None = None,
    watch: tuple[list[str], Callable[[int, np.ndarray], bool]] | None = None,
    learning_rates: list[float] | None = None,
) -> Fitted:
    """Stage: build ``cfg.arch`` on ``texts`` and fit it.

    With ``val``: early stopping on it (guarded, see GuardedEarlyStopping) and a learning rate
    that drops on plateaus. Without: exactly ``epochs`` epochs at a constant learning rate (the
    kfold refit, whose epoch count the folds chose under the same schedule).

    ``features``: the run's features cache (``Architecture.make_features``; None for the
    architectures without one). ``watch``: (texts, on_epoch): after every epoch
    ``on_epoch(epoch, probabilities of texts)`` is called; True from it stops training.
    ``learning_rates``: the rate of each epoch (a refit replaying a run's schedule).
    """
    import keras
    import tensorflow as tf

    from training.model import build_model
    from training.progress import EpochLog, GuardedEarlyStopping

    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    with _strategy_scope(cfg.strategy) as replicas:
        model = build_model(cfg.arch, texts, n_labels, cfg.params, features=features)
        per_batch: Callable[[Any], Any] = lambda ds: ds  # noqa: E731
        if cfg.strategy != "default":
            # On replicas the strings are vectorized in tf.data and the shared-weight body trains.
            fit_model, per_batch = _replica_trainee(model, texts)
            trainee = Trainee.on_strings(model)
        elif features is None and len(texts) > PRECOMPUTE_MAX_ROWS:
            trainee = Trainee.on_strings(model)
            fit_model = model
        else:
            # The body trains on inputs computed once here (vectorized texts, cached features).
            trainee = _default_trainee(model, texts, features)
            fit_model = trainee.model
        train_x = trainee.inputs(texts)
        val_x = trainee.inputs(val[0]) if val else None
    cbs: list[keras.callbacks.Callback] = list(callbacks or [])
    rates: list[float] = []

    class RecordRate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if learning_rates:
                self.model.optimizer.learning_rate.assign(learning_rates[epoch])
            rates.append(float(np.asarray(self.model.optimizer.learning_rate)))

    cbs.append(RecordRate())
    if watch is not None:
        watched, on_epoch = watch

        class Watch(keras.callbacks.Callback):
            """Predict the watched texts after every epoch (their inputs computed once)."""

            x = trainee.inputs(watched)

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if on_epoch(epoch, trainee.predict_inputs(self.x)):
                    self.model.stop_training = True

        cbs.append(Watch())
    if val is not None:
        cbs.append(
            GuardedEarlyStopping(
                n_labels,
                monitor=cfg.monitor,
                mode="min" if cfg.monitor == "val_loss" else "max",
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
    n_epochs = epochs or cfg.epochs
    if cfg.verbose if verbose is None else verbose:
        cbs.append(EpochLog(n_epochs, log))
    started = time.monotonic()
    history = fit_model.fit(
        per_batch(_dataset(cfg, train_x, y, n_labels, train=True)),
        validation_data=(
            per_batch(_dataset(cfg, val_x, val[1], n_labels, train=False)) if val else None
        ),
        epochs=n_epochs,
        callbacks=cbs,
        shuffle=False,  # the tf.data pipeline shuffles, with the seed
        verbose=0,
    )
    epochs_run = len(history.history["loss"])
    guard = next((c for c in cbs if isinstance(c, GuardedEarlyStopping)), None)
    best = (guard.best_epoch_number if guard else None) or epochs_run
    return Fitted(model, epochs_run, best, time.monotonic() - started, replicas, trainee, rates)


def kfold_indices(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out row indices per fold, stratified: each label's rows dealt round the folds.

    A label with fewer rows than folds is held out in as many folds as it has rows, so every
    row is held out exactly once and still has a training example of its label elsewhere
    when it has two or more.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            parts[(offset + j) % folds].append(int(i))
        offset += len(idx)  # labels start where the last one stopped: folds stay even
    return [np.array(sorted(p), dtype=np.int64) for p in parts if p]


def wants_refit(cfg: TrainConfig) -> bool:
    """``cfg.refit``, or (None) the default of ``cfg.arch`` (decided, not ``auto``)."""
    from training import architectures

    return architectures.get(cfg.arch).refit if cfg.refit is None else cfg.refit


def fitted_rows(prep: Prepared) -> list[str]:
    """The texts the published model trains on: train, and (a split's refit) val."""
    return prep.splits.texts["train"] + prep.splits.texts["val"]


def refit(
    cfg: TrainConfig,
    prep: Prepared,
    first: Fitted,
    log: Callable[[str], None],
    features: Any | None = None,
) -> Fitted:
    """Stage (split): train again on train + val rows for the epochs (and learning rates)
    the val rows chose; the first model's val predictions stay the held-out ones."""
    splits = prep.splits
    texts = fitted_rows(prep)
    y = np.concatenate([splits.y["train"], splits.y["val"]])
    started = time.monotonic()
    done = fit(
        cfg,
        texts,
        y,
        len(splits.labels),
        log,
        epochs=first.best_epoch,
        verbose=False,
        features=features,
        learning_rates=first.learning_rates[: first.best_epoch],
    )
    log(
        f"refit on {len(texts)} train + val rows for {first.best_epoch} epochs "
        f"({time.monotonic() - started:.0f}s)"
    )
    return replace(
        done,
        epochs_run=first.epochs_run,
        best_epoch=first.best_epoch,
        fit_seconds=first.fit_seconds + done.fit_seconds,
    )


def cross_validate(
    cfg: TrainConfig, prep: Prepared, log: Callable[[str], None], features: Any | None = None
) -> HeldOut:
    """Stage (kfold): a model per fold, its held-out rows predicted after every epoch; choose
    the refit's epoch count from the mean out-of-fold curve and keep that epoch's predictions.

    ``features``: the run's features cache, shared by the folds (``fit``).
    """
    from training.calibration import negative_log_likelihood

    splits = prep.splits
    texts, y = splits.texts["train"], splits.y["train"]
    n_labels = len(splits.labels)
    folds = kfold_indices(y, min(cfg.folds, len(y)), cfg.seed)
    fold_rows = len(y) - max(len(f) for f in folds)
    most = max(cfg.epochs, math.ceil(KFOLD_MIN_STEPS * cfg.batch_size / max(fold_rows, 1)))
    # per_epoch[e][i]: row i's probabilities after epoch e+1 of the fold holding it out.
    per_epoch = np.zeros((most, len(y), n_labels), dtype=np.float32)

    class RecordHeldOut:
        """Record the fold's held-out predictions after each epoch (fit's ``watch``); on the
        first fold, stop once neither their accuracy nor their loss improved for
        ``cfg.patience`` epochs (the later folds then run as many epochs: the horizon the curve
        is chosen from)."""

        def __init__(self, rows: np.ndarray, stop: bool) -> None:
            self.rows, self.stop = rows, stop
            self.best: tuple[float, float, int] = (-1.0, np.inf, 0)

        def __call__(self, epoch: int, p: np.ndarray) -> bool:
            per_epoch[epoch, self.rows] = p
            acc = float((p.argmax(axis=1) == y[self.rows]).mean())
            loss = negative_log_likelihood(p, y[self.rows])
            best_acc, best_loss, at = self.best
            if acc > best_acc or loss < best_loss:
                self.best = (max(acc, best_acc), min(loss, best_loss), epoch)
                return False
            return self.stop and epoch - at >= cfg.patience

    started = time.monotonic()
    horizon = most
    for k, held in enumerate(folds):
        train_rows = np.setdiff1d(np.arange(len(y)), held)
        done = fit(
            cfg,
            [texts[i] for i in train_rows],
            y[train_rows],
            n_labels,
            log,
            epochs=horizon,
            verbose=False,
            features=features,
            watch=([texts[i] for i in held], RecordHeldOut(held, stop=k == 0)),
        )
        horizon = min(horizon, done.epochs_run)
        log(
            f"fold {k + 1}/{len(folds)}: trained on {len(train_rows)} rows for {done.epochs_run} "
            f"epochs, predicted {len(held)} ({time.monotonic() - started:.0f}s)"
        )
    per_epoch = per_epoch[:horizon]
    accuracy = (per_epoch.argmax(axis=2) == y[None, :]).mean(axis=1)
    nll = np.array([negative_log_likelihood(p, y) for p in per_epoch])
    tied = np.flatnonzero(accuracy >= accuracy.max() - EPOCH_TIE)
    best = int(tied[np.argmin(nll[tied])])
    log(
        f"cross-validation: best at epoch {best + 1}/{horizon} (out-of-fold accuracy "
        f"{accuracy[best]:.4f}, loss {nll[best]:.4f}) in {time.monotonic() - started:.1f}s"
    )
    info = {
        "method": "kfold",
        "folds": len(folds),
        "chosen_epochs": best + 1,
        "out_of_fold_accuracy_by_epoch": [round(float(a), 4) for a in accuracy],
        "out_of_fold_loss_by_epoch": [round(float(v), 4) for v in nll],
        "seconds": round(time.monotonic() - started, 2),
    }
    return HeldOut("cv", per_epoch[best], y, epochs=best + 1, info=info)


@dataclass
class Calibrated:
    temperature: float
    probs: dict[str, np.ndarray]  # calibrated, per split ("cv"/"val", "test")
    uncalibrated: dict[str, np.ndarray]
    calibration: dict[str, Any]
    fallback: artifact.FallbackInfo
    warnings: list[str]


def calibrate_and_choose_threshold(
    cfg: TrainConfig, held: HeldOut, test: tuple[np.ndarray, np.ndarray] | None
) -> Calibrated:
    """Stage: temperature and fallback threshold from the held-out predictions.

    Fewer than MIN_HELD_OUT (or 3 per label) of them: T stays 1 and the threshold is flagged
    as unreliable. A threshold that would hand more than ``cfg.max_fallback_rate`` of messages
    to a person is reported and capped there.
    """
    from training.calibration import calibrate, record_margin
    from training.evaluate import apply_threshold, choose_threshold

    probs = {held.split: held.probs}
    ys = {held.split: held.y}
    if test is not None:
        probs["test"], ys["test"] = test
    warnings: list[str] = []
    needed = max(MIN_HELD_OUT, MIN_HELD_OUT_PER_LABEL * held.probs.shape[1])
    if len(held.y) < needed:
        warnings.append(
            f"only {len(held.y)} held-out predictions (< {needed}): confidences are not "
            "calibrated (T = 1) and the fallback threshold is a rough guess; use --validation "
            "kfold or a larger --val-data"
        )
        temperature, after, calibration = 1.0, dict(probs), {"method": "none", "temperature": 1.0}
    else:
        temperature, after, calibration = calibrate(probs, ys, fit_on=held.split)
    held_probs = after[held.split]
    correct = held_probs.argmax(axis=1) == held.y
    conf = held_probs.max(axis=1)
    chosen = choose_threshold(conf, correct, cfg.target_precision)
    target_threshold = None
    if chosen.fallback_rate > cfg.max_fallback_rate:
        target_threshold = chosen.threshold
        capped = float(np.quantile(conf, cfg.max_fallback_rate, method="lower"))
        capped_fb = apply_threshold(conf, correct, capped)
        warnings.append(
            f"reaching precision {cfg.target_precision:.2f} would need threshold "
            f"{chosen.threshold:.4f}, which hands {chosen.fallback_rate:.0%} of messages to a "
            f"person; capped at --max-fallback-rate {cfg.max_fallback_rate:.0%}: threshold "
            f"{capped:.4f}, precision of the kept messages {capped_fb.precision or 0:.3f} "
            "(more labelled examples raise it)"
        )
        chosen = capped_fb
    fallback = artifact.FallbackInfo(
        threshold=chosen.threshold,
        target_precision=cfg.target_precision,
        val_precision=chosen.precision,
        val_fallback_rate=chosen.fallback_rate,
        chosen_on=held.split,
        held_out_rows=int(len(held.y)),
        target_threshold=target_threshold,
        max_fallback_rate=cfg.max_fallback_rate,
    )
    if "test" in after:
        t = apply_threshold(
            after["test"].max(axis=1), after["test"].argmax(axis=1) == ys["test"], chosen.threshold
        )
        fallback.test_precision, fallback.test_fallback_rate = t.precision, t.fallback_rate
    test_set = (after["test"], ys["test"]) if "test" in after else None
    warnings += record_margin(fallback, (held_probs, held.y), test_set)
    return Calibrated(temperature, after, probs, calibration, fallback, warnings)


def evaluate(
    cfg: TrainConfig,
    prep: Prepared,
    held: HeldOut,
    cal: Calibrated,
    predict: Callable[[list[str]], np.ndarray],
) -> dict[str, Any]:
    """Stage: metrics of every held-out set (calibrated), the fallback, out-of-scope texts.

    ``predict``: the fitted model's uncalibrated probabilities (``Fitted.predict``).
    """
    from training.calibration import apply_temperature
    from training.evaluate import compute_metrics
    from training.oos import score_oos

    ys = {held.split: held.y, "test": prep.splits.y["test"]}
    metrics: dict[str, Any] = {
        s: compute_metrics(ys[s], p, prep.splits.labels) for s, p in cal.probs.items()
    }
    metrics["fallback"] = cal.fallback.model_dump(exclude_none=True)
    metrics["calibration"] = cal.calibration
    metrics["evaluation"] = {
        "held_out": held.split,
        "how": (
            f"{held.info['folds']}-fold cross-validation: each row predicted by the fold model "
            f"that did not train on it, after epoch {held.epochs}; the published model is a "
            f"refit on all {len(held.y)} rows for {held.epochs} epochs"
            if held.split == "cv"
            else f"a stratified {len(held.y)}-row validation split "
            f"({prep.splits.sources['val']}) chose {held.epochs} epochs; the published model "
            + (
                f"is a refit on all {held.info['refit_rows']} train + val rows for as many "
                "epochs (val figures: the first model, which never trained on them)"
                if "refit_rows" in held.info
                else "never trained on it"
            )
        ),
        "test": prep.splits.sources["test"] if "test" in cal.probs else None,
        "warnings": cal.warnings,
        **({"cross_validation": held.info} if held.split == "cv" else {}),
        **(
            {"refit": {"rows": held.info["refit_rows"], "epochs": held.epochs}}
            if "refit_rows" in held.info
            else {}
        ),
    }
    if prep.oos_texts:
        in_split = "test" if "test" in cal.probs else held.split
        oos_probs = apply_temperature(predict(prep.oos_texts), cal.temperature)
        metrics["oos"] = score_oos(
            cal.probs[in_split], ys[in_split], oos_probs, cal.fallback.threshold
        )
    return metrics


def package(
    cfg: TrainConfig,
    prep: Prepared,
    held: HeldOut,
    cal: Calibrated,
    fitted: Fitted,
    metrics: dict[str, Any],
) -> Path:
    """Stage: metadata, the report and the calibrated model, published as the next version."""
    import tensorflow as tf

    from training import architectures
    from training.calibration import append_quality_report
    from training.export import export_version
    from training.report import write_report

    splits = prep.splits
    counts = {s: len(t) for s, t in splits.texts.items()}
    params = {
        **cfg.params.as_dict(),
        "epochs": cfg.epochs,
        "patience": cfg.patience,
        "monitor": cfg.monitor,
        "reduce_lr_patience": cfg.reduce_lr_patience,
        "reduce_lr_factor": cfg.reduce_lr_factor,
        "batch_size": cfg.batch_size,
        "class_weights": cfg.class_weights,
        "seed": cfg.seed,
        "validation": prep.validation,
        "refit": wants_refit(cfg) and cfg.val_data is None and prep.validation == "split",
        "folds": cfg.folds,
        "val_fraction": cfg.val_fraction,
        "test_fraction": cfg.test_fraction,
        "target_precision": cfg.target_precision,
        "max_fallback_rate": cfg.max_fallback_rate,
        "strategy": cfg.strategy,
        "arch_requested": prep.arch_requested,
        "replicas": fitted.replicas,
        "text_column": cfg.text_column,
        "label_column": cfg.label_column,
        "sources": splits.sources,
        "oos_data": str(cfg.oos_data) if cfg.oos_data else None,
    }
    headline: dict[str, Any] = {
        s: {k: metrics[s][k] for k in ("rows", "accuracy", "macro_f1")}
        for s in ("cv", "val", "test")
        if s in metrics
    }
    meta = artifact.Metadata(
        name=prep.name,
        version=1,  # set by export_version when it claims the number
        labels=splits.labels,
        created_at=artifact.utc_now_iso(),
        tensorflow_version=tf.__version__,
        arch=cfg.arch,
        tokenizer=architectures.get(cfg.arch).tokenizer_description(),
        data=artifact.DataInfo(
            file=str(prep.loaded[0].path), sha256=prep.loaded[0].sha256, rows=counts
        ),
        params=params,
        metrics={**headline, "training": metrics["training"], "evaluation": metrics["evaluation"]},
        fallback=cal.fallback,
        op_libraries=list(architectures.get(cfg.arch).op_libraries),
    )
    meta.metrics.update({k: metrics[k] for k in ("calibration", "oos") if k in metrics})
    report_split = "test" if "test" in cal.probs else held.split
    report_metrics = dict(metrics)
    report_metrics.setdefault("test", metrics[report_split])
    report_y = splits.y["test"] if report_split == "test" else held.y
    source = "cross-validation" if report_split == "cv" else Path(splits.sources[report_split]).name

    def report(out: Path) -> None:
        write_report(
            out,
            f"Model {prep.name} ({cfg.arch}) on {source}",
            report_metrics,
            splits.labels,
            report_y,
            cal.probs[report_split],
        )
        if cal.calibration.get("method") == "temperature":
            append_quality_report(
                out,
                report_split,
                cal.uncalibrated[report_split],
                cal.probs[report_split],
                report_y,
                cal.calibration,
                metrics.get("oos"),
                fitted_on="out-of-fold predictions" if held.split == "cv" else held.split,
            )

    return export_version(fitted.model, cfg.model_dir, prep.name, meta, report)


def train(
    cfg: TrainConfig, log: Callable[[str], None] = _print, features: Any | None = None
) -> Path:
    """Run every stage and return the published version folder.

    ``features``: the run's features cache (default: a fresh one, for the architectures that
    have one, see ``Architecture.make_features``).
    """
    from training import architectures, fonts
    from training.calibration import with_temperature

    prep = prepare(cfg, log)
    cfg = replace(cfg, arch=prep.arch)
    splits = prep.splits
    n_labels = len(splits.labels)
    x, y = splits.texts["train"], splits.y["train"]
    # This run's cache of the frozen encoder's features (None for the other architectures):
    # each distinct text is encoded once, for every fold, the refit and every prediction.
    if features is None:
        features = architectures.get(cfg.arch).make_features()
    if prep.validation == "kfold":
        held = cross_validate(cfg, prep, log, features)
        fitted = fit(cfg, x, y, n_labels, log, epochs=held.epochs, features=features)
    else:
        val = (splits.texts["val"], splits.y["val"])
        fitted = fit(cfg, x, y, n_labels, log, val=val, features=features)
        held = HeldOut("val", fitted.predict(val[0]), val[1], epochs=fitted.best_epoch)
        if wants_refit(cfg) and cfg.val_data is None:
            fitted = refit(cfg, prep, fitted, log, features)
            held.info["refit_rows"] = len(fitted_rows(prep))
    test = None
    if splits.texts["test"]:
        test = (fitted.predict(splits.texts["test"]), splits.y["test"])
    cal = calibrate_and_choose_threshold(cfg, held, test)
    for warning in [*cal.warnings, *fonts.label_warnings(splits.labels)]:
        log(f"warning: {warning}")
    metrics = evaluate(cfg, prep, held, cal, fitted.predict)
    fitted.model = with_temperature(fitted.model, cal.temperature)
    metrics["training"] = {
        "epochs_run": fitted.epochs_run,
        "best_epoch": fitted.best_epoch,
        "fit_seconds": round(fitted.fit_seconds, 2),
        "seconds": round(time.monotonic() - prep.started, 2),
    }
    path = package(cfg, prep, held, cal, fitted, metrics)
    total = time.monotonic() - prep.started
    shown = "test" if test is not None else held.split
    t = metrics[shown]
    fb = cal.fallback
    log(
        f"done in {total:.1f}s ({fitted.epochs_run} epochs, best {fitted.best_epoch}): "
        f"{shown} accuracy {t['accuracy']:.4f}, macro-F1 {t['macro_f1']:.4f}; "
        f"fallback threshold {fb.threshold:.3f} "
        f"({held.split}: {fb.val_fallback_rate:.1%} fall back)"
    )
    return path


def predict_probabilities(model: Any, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Probabilities [n, n_labels] from a Keras model or a serving signature."""
    import tensorflow as tf

    out = []
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(texts[start : start + batch_size], dtype=tf.string)
        result = model(batch, training=False) if hasattr(model, "fit") else model(text=batch)
        if isinstance(result, dict):
            result = result[artifact.OUTPUT_KEY]
        out.append(np.asarray(result, dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
