"""The training pipeline: data -> split -> model -> fit -> evaluate -> versioned artifact."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    # ngram: the most accurate single model on BANKING77 and the fastest to serve (README Results).
    arch: str = "ngram"
    params: ModelParams = field(default_factory=ModelParams)
    epochs: int = 30
    patience: int = 4
    monitor: Literal["val_loss", "val_accuracy"] = "val_accuracy"
    reduce_lr_patience: int = 2  # 0: constant learning rate
    reduce_lr_factor: float = 0.3
    batch_size: int = 32
    class_weights: bool = True
    target_precision: float = 0.95
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


def prepare_splits(cfg: TrainConfig, log: Callable[[str], None]) -> tuple[Splits, list[Dataset]]:
    """Load the file(s) and split; raise DataError on bad data."""
    data = cfg.data or EXAMPLE_TRAIN
    test_data = cfg.test_data if cfg.data else (cfg.test_data or EXAMPLE_TEST)
    main = _load(data, cfg, 2)
    loaded = [main]
    fractions = (
        0.0 if cfg.val_data else cfg.val_fraction,
        0.0 if test_data else cfg.test_fraction,
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
    if not texts["val"]:
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


def unused_model_flags(cfg: TrainConfig) -> list[str]:
    """``--flags`` set away from their defaults that ``cfg.arch`` does not read."""
    from training import architectures

    defaults = ModelParams().as_dict()
    changed = [k for k, v in cfg.params.as_dict().items() if v != defaults[k]]
    return ["--" + f.replace("_", "-") for f in architectures.unused_flags(cfg.arch, changed)]


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


def train(cfg: TrainConfig, log: Callable[[str], None] = _print) -> Path:
    """Run the whole pipeline and return the published version folder."""
    import keras
    import tensorflow as tf

    from training.calibration import append_quality_report, calibrate, with_temperature
    from training.evaluate import apply_threshold, choose_threshold, compute_metrics
    from training.export import export_version
    from training.model import build_model
    from training.oos import load_oos_texts, score_oos
    from training.progress import EpochLog
    from training.report import write_report

    started = time.monotonic()
    name = artifact.validate_name(
        cfg.name or (name_from_path(cfg.data) if cfg.data else EXAMPLE_NAME)
    )
    splits, loaded = prepare_splits(cfg, log)
    for flag in unused_model_flags(cfg):
        log(f"warning: {flag} does not apply to --arch {cfg.arch}; it is ignored")
    oos_texts = load_oos_texts(cfg.oos_data, cfg.text_column) if cfg.oos_data else None
    n_labels = len(splits.labels)
    counts = {s: len(t) for s, t in splits.texts.items()}
    log(
        f"data: {counts['train']} train, {counts['val']} val, {counts['test']} test rows, "
        f"{n_labels} labels"
    )

    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    with _strategy_scope(cfg.strategy) as replicas:
        model = build_model(cfg.arch, splits.texts["train"], n_labels, cfg.params)
        # On replicas the strings are vectorized in tf.data and the shared-weight body trains.
        trainee, features = (
            (model, lambda ds: ds)
            if cfg.strategy == "default"
            else _replica_trainee(model, splits.texts["train"])
        )

    def dataset(split: str, shuffle: bool) -> tf.data.Dataset:
        x = tf.constant(splits.texts[split], dtype=tf.string)
        y = splits.y[split]
        if split == "train" and cfg.class_weights:
            w = balanced_class_weights(splits.y["train"], n_labels)[y].astype(np.float32)
            ds = tf.data.Dataset.from_tensor_slices((x, y, w))
        else:
            ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(y), seed=cfg.seed, reshuffle_each_iteration=True)
        ds = ds.batch(cfg.batch_size)
        ds = ds.map(lambda x, y, *w: (x, tf.one_hot(y, n_labels), *w))
        return ds.prefetch(tf.data.AUTOTUNE)

    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(
            monitor=cfg.monitor,
            mode="min" if cfg.monitor == "val_loss" else "max",
            patience=cfg.patience,
            restore_best_weights=True,
        )
    ]
    if cfg.reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=cfg.reduce_lr_factor,
                patience=cfg.reduce_lr_patience,
                min_lr=cfg.params.learning_rate / 100,
            )
        )
    if cfg.verbose:
        callbacks.append(EpochLog(cfg.epochs, log))
    fit_started = time.monotonic()
    history = trainee.fit(
        features(dataset("train", shuffle=True)),
        validation_data=features(dataset("val", shuffle=False)),
        epochs=cfg.epochs,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles, with the seed
        verbose=0,
    )
    fit_seconds = time.monotonic() - fit_started
    epochs_run = len(history.history["loss"])

    probs = {
        s: predict_probabilities(model, splits.texts[s], cfg.batch_size * 8)
        for s in ("val", "test")
        if splits.texts[s]
    }
    # Temperature scaling fitted on val (training.calibration): the metrics, the fallback
    # threshold and the exported model below all use calibrated probabilities.
    uncalibrated = probs
    temperature, probs, calibration = calibrate(probs, splits.y)
    model = with_temperature(model, temperature)
    metrics: dict[str, Any] = {
        s: compute_metrics(splits.y[s], probs[s], splits.labels) for s in probs
    }
    val_conf = probs["val"].max(axis=1)
    val_fb = choose_threshold(
        val_conf, probs["val"].argmax(axis=1) == splits.y["val"], cfg.target_precision
    )
    fallback = artifact.FallbackInfo(
        threshold=val_fb.threshold,
        target_precision=cfg.target_precision,
        val_precision=val_fb.precision,
        val_fallback_rate=val_fb.fallback_rate,
    )
    if "test" in probs:
        test_fb = apply_threshold(
            probs["test"].max(axis=1),
            probs["test"].argmax(axis=1) == splits.y["test"],
            val_fb.threshold,
        )
        fallback.test_precision = test_fb.precision
        fallback.test_fallback_rate = test_fb.fallback_rate
    metrics["fallback"] = fallback.model_dump()
    metrics["calibration"] = calibration
    if oos_texts:
        in_split = "test" if "test" in probs else "val"
        oos_probs = predict_probabilities(model, oos_texts, cfg.batch_size * 8)
        metrics["oos"] = score_oos(
            probs[in_split], splits.y[in_split], oos_probs, fallback.threshold
        )
    metrics["training"] = {
        "epochs_run": epochs_run,
        "best_epoch": _best_epoch(history.history[cfg.monitor], cfg.monitor),
        "fit_seconds": round(fit_seconds, 2),
    }

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
        "val_fraction": cfg.val_fraction,
        "test_fraction": cfg.test_fraction,
        "target_precision": cfg.target_precision,
        "strategy": cfg.strategy,
        "replicas": replicas,
        "text_column": cfg.text_column,
        "label_column": cfg.label_column,
        "sources": splits.sources,
        "oos_data": str(cfg.oos_data) if cfg.oos_data else None,
    }
    headline: dict[str, Any] = {
        s: {k: metrics[s][k] for k in ("rows", "accuracy", "macro_f1")}
        for s in ("val", "test")
        if s in metrics
    }
    meta = artifact.Metadata(
        name=name,
        version=1,  # set by export_version when it claims the number
        labels=splits.labels,
        created_at=artifact.utc_now_iso(),
        tensorflow_version=tf.__version__,
        arch=cfg.arch,
        data=artifact.DataInfo(
            file=str(loaded[0].path),
            sha256=loaded[0].sha256,
            rows=counts,
        ),
        params=params,
        metrics={**headline, "training": metrics["training"]},
        fallback=fallback,
    )
    meta.metrics.update({k: metrics[k] for k in ("calibration", "oos") if k in metrics})
    report_split = "test" if "test" in probs else "val"
    report_metrics = dict(metrics)
    report_metrics.setdefault("test", metrics[report_split])

    def report(out: Path) -> None:
        write_report(
            out,
            f"Model {name} ({cfg.arch}) on {Path(splits.sources[report_split]).name}",
            report_metrics,
            splits.labels,
            splits.y[report_split],
            probs[report_split],
        )
        append_quality_report(
            out,
            report_split,
            uncalibrated[report_split],
            probs[report_split],
            splits.y[report_split],
            calibration,
            metrics.get("oos"),
        )

    path = export_version(model, cfg.model_dir, name, meta, report)
    total = time.monotonic() - started
    t = metrics.get("test", metrics["val"])
    log(
        f"done in {total:.1f}s ({epochs_run} epochs, best {metrics['training']['best_epoch']}): "
        f"{report_split} accuracy {t['accuracy']:.4f}, macro-F1 {t['macro_f1']:.4f}; "
        f"fallback threshold {fallback.threshold:.3f} "
        f"(val: {fallback.val_fallback_rate:.1%} fall back)"
    )
    return path


def _best_epoch(values: list[float], monitor: str) -> int:
    return int(np.argmin(values) if monitor == "val_loss" else np.argmax(values)) + 1


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
