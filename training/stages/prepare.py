"""Stage prepare: load and validate the file(s), split them, decide the architecture and how
held-out predictions will be made, and warn about what will limit the model."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from training import artifact
from training.config import TrainConfig
from training.data import (
    EXAMPLE_NAME,
    EXAMPLE_TEST,
    EXAMPLE_TRAIN,
    DataError,
    Dataset,
    load_dataset,
)
from training.params import ModelParams
from training.split import stratified_split

# auto picks kfold up to this many rows without --val-data: k+1 fits stay within minutes on
# two cores for the default and the encoder (docs/results/accuracy.md), and a 10% val split
# of a larger file is >= 400 rows.
KFOLD_MAX_ROWS = 4000
# Labels with fewer training rows than this get a warning naming them.
FEW_EXAMPLES = 5
Log = Callable[[str], None]


@dataclass(kw_only=True)
class Splits:
    """Texts and label indices for train, val and test, plus where they came from."""

    labels: list[str]
    texts: dict[str, list[str]]
    y: dict[str, np.ndarray]
    sources: dict[str, str]


@dataclass(kw_only=True)
class Prepared:
    """The stage's output: the data, split, and how held-out predictions will be obtained."""

    name: str
    splits: Splits
    loaded: list[Dataset]
    validation: Literal["split", "kfold"]
    oos_texts: list[str] | None
    started: float
    arch: str  # cfg.arch with "auto" decided (training.architectures.resolve_arch)
    arch_requested: str
    arch_reason: str  # why resolve_arch chose ``arch`` (metadata.json params.arch_reason)


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


def _warn_conflicts(loaded: list[Dataset], log: Log) -> None:
    for ds in loaded:
        for c in ds.conflicts:
            log(
                f"warning: {ds.path}: text {c.text[:60]!r} has labels {', '.join(c.labels)} "
                f"(lines {', '.join(map(str, c.lines))})"
            )


def prepare_splits(
    cfg: TrainConfig, log: Log, validation: str | None = None
) -> tuple[Splits, list[Dataset]]:
    """Load the file(s) and split (kfold: no val, and no test unless --test-data)."""
    data = cfg.data or EXAMPLE_TRAIN
    test_data = cfg.test_data if cfg.data else (cfg.test_data or EXAMPLE_TEST)
    main = _load(data, cfg, 2)
    loaded = [main]
    kfold = (validation or choose_validation(cfg, len(main.texts))) == "kfold"
    fractions = (
        0.0 if cfg.val_data or kfold else cfg.val_fraction,
        0.0 if test_data or kfold else cfg.test_fraction,
    )
    rows = stratified_split(main.labels, fractions, cfg.seed)
    parts = dict(zip(("train", "val", "test"), rows, strict=True))
    labels = sorted(set(main.labels[i] for i in parts["train"]))
    texts = {s: [main.texts[i] for i in idx] for s, idx in parts.items()}
    raw_labels = {s: [main.labels[i] for i in idx] for s, idx in parts.items()}
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
    _warn_conflicts(loaded, log)
    return Splits(labels=labels, texts=texts, y=y, sources=sources), loaded


def unused_model_flags(cfg: TrainConfig, arch: str | None = None) -> list[str]:
    """``--flags`` set away from their defaults that ``arch`` (or ``cfg.arch``) does not read."""
    from training import architectures

    defaults = ModelParams().as_dict()
    changed = [k for k, v in cfg.params.as_dict().items() if v != defaults[k]]
    used = arch or cfg.arch
    return ["--" + f.replace("_", "-") for f in architectures.unused_flags(used, changed)]


def few_example_labels(splits: Splits) -> dict[str, int]:
    """Labels with fewer than FEW_EXAMPLES training rows, and their counts."""
    counts = np.bincount(splits.y["train"], minlength=len(splits.labels))
    return {lab: int(c) for lab, c in zip(splits.labels, counts, strict=True) if c < FEW_EXAMPLES}


def _warn_limits(cfg: TrainConfig, splits: Splits, arch: str, log: Log) -> None:
    for flag in unused_model_flags(cfg, arch):
        log(f"warning: {flag} does not apply to --arch {arch}; it is ignored")
    few = few_example_labels(splits)
    if few:
        shown = ", ".join(f"{lab} ({n})" for lab, n in sorted(few.items(), key=lambda kv: kv[1]))
        log(
            f"warning: {len(few)} label(s) have fewer than {FEW_EXAMPLES} training examples, "
            f"too few to learn reliably: {shown}"
        )


def prepare(cfg: TrainConfig, log: Log) -> Prepared:
    """Load, validate and split the data; decide the architecture; say what was found."""
    from training import architectures
    from training.oos import load_oos_texts

    started = time.monotonic()
    name = artifact.validate_name(
        cfg.name or (name_from_path(cfg.data) if cfg.data else EXAMPLE_NAME)
    )
    splits, loaded = prepare_splits(cfg, log)
    validation: Literal["split", "kfold"] = "kfold" if not splits.texts["val"] else "split"
    arch, why = architectures.resolve_arch(
        cfg.arch, splits.y["train"], splits.texts["train"], cfg.params.encoders
    )
    if arch != cfg.arch:
        log(f"architecture: {arch} ({why})")
    if arch == "encoder":
        prefix = f" (e5 prefix {cfg.params.e5_prefix!r})" if "e5" in cfg.params.encoders else ""
        log(f"encoders: {', '.join(cfg.params.encoders)}{prefix}")
    _warn_limits(cfg, splits, arch, log)
    counts = {s: len(t) for s, t in splits.texts.items()}
    folds = min(fold_count(cfg, arch), len(splits.y["train"]))
    how = (
        f"{folds}-fold cross-validation, then a refit on all {counts['train']} rows"
        if validation == "kfold"
        else f"{counts['val']} val rows held out"
    )
    log(
        f"data: {counts['train']} train, {counts['val']} val, {counts['test']} test rows, "
        f"{len(splits.labels)} labels; {how}"
    )
    oos = load_oos_texts(cfg.oos_data, cfg.text_column) if cfg.oos_data else None
    return Prepared(
        name=name,
        splits=splits,
        loaded=loaded,
        validation=validation,
        oos_texts=oos,
        started=started,
        arch=arch,
        arch_requested=cfg.arch,
        arch_reason=why,
    )


def fold_count(cfg: TrainConfig, arch: str | None = None) -> int:
    """``cfg.folds``, or (None) the default of ``arch`` (default ``cfg.arch``; decided, not
    ``auto``)."""
    from training import architectures

    return architectures.get(arch or cfg.arch).folds if cfg.folds is None else cfg.folds
