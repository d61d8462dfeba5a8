"""Retrain: original data + feedback corrections -> a candidate, judged by training.gate.

``retrain`` trains a candidate with the serving version's own settings (its metadata.json
``params``, read back through training.settings) on the original training file with every
correction applied (a correction of a text that is in the file replaces that row's label; a
new text is added), then scores the candidate and the serving version on the same held-out
rows and asks the gate whether the candidate may be published.

Held-out rows, in order of preference: a test file given here; the test file the serving
version was evaluated on (``params.sources.test``); else the serving version's own test split
of the original file, reproduced with its seed and fractions (only when the file is byte for
byte the one it trained on, so nothing it trained on is tested on). Held-out texts are never
trained on, even when a correction names them. The feedback-labelled live texts are scored
too and reported separately: the candidate trained on them, so that score is in-sample and
does not decide anything.

This module does not publish or label anything: the caller does, when ``passed``.
"""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import artifact
from training.config import TrainConfig
from training.data import DataError, load_dataset
from training.gate import Tolerance, compare, score_version, verdict
from training.settings import config_from_params
from training.split import stratified_split
from training.train import train


class RetrainError(Exception):
    """Retraining cannot run as asked; the message says why (not a refusal by the gate)."""


@dataclass(frozen=True, slots=True)
class Correction:
    """The newest correction of one text: its correct label (and what was predicted)."""

    text: str
    label: str
    predicted: str | None = None


@dataclass
class Outcome:
    """What retraining did: the candidate (in a staging folder), the comparison, the verdict."""

    passed: bool
    reasons: list[str]
    report: dict[str, Any]
    candidate_dir: Path | None
    notes: list[str] = field(default_factory=list)


def config_like(
    meta: artifact.Metadata, settings: type[TrainConfig] = TrainConfig, **run: Any
) -> TrainConfig:
    """A ``settings`` that trains like the version ``meta`` describes: every recorded, reused
    setting its ``params`` hold (training.settings), its architecture, and ``run``."""
    cfg: TrainConfig = config_from_params(
        settings, meta.params, arch=meta.arch, verbose=False, **run
    )
    return cfg


def _is_file_source(source: str | None) -> bool:
    return bool(source) and not str(source).endswith("(split)")


@dataclass
class _Rows:
    texts: list[str]
    labels: list[str]
    source: str


def held_out_rows(
    meta: artifact.Metadata, original: Path, test_data: Path | None
) -> tuple[_Rows, _Rows]:
    """(rows to train the candidate from, held-out rows); see the module docstring."""
    p = meta.params
    text_col, label_col = p.get("text_column", "text"), p.get("label_column", "label")
    ds = load_dataset(original, text_column=text_col, label_column=label_col)
    sources = p.get("sources") or {}
    test_source = str(test_data) if test_data else sources.get("test")
    if _is_file_source(test_source):
        test_path = Path(str(test_source))
        if not test_path.is_file():
            raise RetrainError(
                f"version {meta.version} was tested on {test_path}, which is not there; "
                "pass --test-data"
            )
        test = load_dataset(
            test_path, text_column=text_col, label_column=label_col, min_examples_per_label=1
        )
        return _Rows(ds.texts, ds.labels, str(original)), _Rows(
            test.texts, test.labels, str(test_path)
        )
    if ds.sha256 != meta.data.sha256:
        raise RetrainError(
            f"{original} is not the file version {meta.version} trained on (sha256 "
            f"{ds.sha256[:12]} != {meta.data.sha256[:12]}), so its test split cannot be "
            "reproduced and might include rows that version trained on; pass --test-data "
            "with rows it never saw"
        )
    fractions = (
        0.0
        if sources.get("val") and _is_file_source(sources.get("val"))
        else p.get("val_fraction", 0.1),
        p.get("test_fraction", 0.1),
    )
    train_idx, val_idx, test_idx = stratified_split(ds.labels, fractions, int(p.get("seed", 0)))
    if not test_idx:
        raise RetrainError(f"version {meta.version} held out no test rows; pass --test-data")
    keep = sorted(train_idx + val_idx)
    return (
        _Rows([ds.texts[i] for i in keep], [ds.labels[i] for i in keep], str(original)),
        _Rows(
            [ds.texts[i] for i in test_idx],
            [ds.labels[i] for i in test_idx],
            f"{original} (version {meta.version}'s test split)",
        ),
    )


def apply_corrections(
    rows: _Rows, corrections: Sequence[Correction], held_out: set[str], known: set[str]
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Training rows with corrections applied, and counts of what happened to them."""
    counts = Counter[str]()
    by_text: dict[str, str] = {}
    for c in corrections:
        text = c.text.strip()
        if c.label not in known:
            counts["unknown_label"] += 1
        elif text in held_out:
            counts["held_out"] += 1  # never train on a text the gate tests on
        else:
            by_text[text] = c.label
    out: list[tuple[str, str]] = []
    for text, label in zip(rows.texts, rows.labels, strict=True):
        if text in held_out:
            counts["original_rows_held_out"] += 1
            continue
        new = by_text.pop(text, None)
        if new is None:
            out.append((text, label))
        else:
            counts["relabelled" if new != label else "confirmed"] += 1
            out.append((text, new))
    counts["added"] = len(by_text)
    out.extend(by_text.items())
    return out, dict(counts)


def _write_csv(path: Path, rows: Sequence[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


@dataclass(kw_only=True)
class RetrainJob:
    """What to retrain: the serving version, the data, the corrections, where to stage."""

    stable_dir: Path
    original: Path
    corrections: Sequence[Correction]
    staging: Path  # a model_dir; the candidate is left there for the caller
    test_data: Path | None = None
    tolerance: Tolerance = field(default_factory=Tolerance)
    settings: type[TrainConfig] = TrainConfig


def _train_candidate(
    job: RetrainJob, meta: artifact.Metadata, rows: list[tuple[str, str]], held: _Rows
) -> Path:
    job.staging.mkdir(parents=True, exist_ok=True)
    data_file, test_file = job.staging / "retrain-data.csv", job.staging / "retrain-held-out.csv"
    _write_csv(data_file, rows)
    _write_csv(test_file, list(zip(held.texts, held.labels, strict=True)))
    cfg = config_like(
        meta,
        job.settings,
        data=data_file,
        test_data=test_file,
        model_dir=job.staging,
        name=meta.name,
        text_column="text",
        label_column="label",
    )
    try:
        return train(cfg, log=lambda _m: None)
    except DataError as exc:
        raise RetrainError(f"the corrected data cannot be trained on: {exc}") from exc


def _notes(counts: dict[str, int]) -> list[str]:
    notes = []
    if counts.get("unknown_label"):
        notes.append(f"{counts['unknown_label']} corrections name labels the model lacks: unused")
    if counts.get("held_out"):
        notes.append(f"{counts['held_out']} corrected texts are held-out rows: not trained on")
    return notes


def _live_report(
    job: RetrainJob, meta: artifact.Metadata, candidate_dir: Path, names: list[str]
) -> dict[str, Any] | None:
    """The feedback-labelled live texts scored by both (in-sample for the candidate)."""
    usable = [c for c in job.corrections if c.label in set(meta.labels)]
    if not usable:
        return None
    texts = [c.text for c in usable]
    return compare(
        [c.label for c in usable],
        score_version(job.stable_dir, texts),
        score_version(candidate_dir, texts),
        names,
    )


def retrain(job: RetrainJob, log: Callable[[str], None] = print) -> Outcome:
    """Train and judge a candidate; it is left in ``job.staging`` for the caller."""
    meta = artifact.read_metadata(job.stable_dir)
    try:
        rows, held = held_out_rows(meta, job.original, job.test_data)
    except DataError as exc:
        raise RetrainError(str(exc)) from exc
    training_rows, counts = apply_corrections(
        rows, job.corrections, set(held.texts), set(meta.labels)
    )
    log(
        f"training a candidate ({meta.arch}, version {meta.version}'s parameters) on "
        f"{len(training_rows)} rows: {counts.get('relabelled', 0)} relabelled, "
        f"{counts.get('added', 0)} added from feedback"
    )
    candidate_dir = _train_candidate(job, meta, training_rows, held)
    names = sorted(set(meta.labels) | set(held.labels))
    held_report = compare(
        held.labels,
        score_version(job.stable_dir, held.texts),
        score_version(candidate_dir, held.texts),
        names,
    )
    reasons = verdict(held_report, job.tolerance)
    notes = _notes(counts)
    report = {
        "model": meta.name,
        "stable_version": meta.version,
        "held_out_source": held.source,
        "training_rows": len(training_rows),
        "corrections": {"given": len(job.corrections), **counts},
        "tolerance": dataclasses.asdict(job.tolerance),
        "held_out": held_report,
        "live_feedback": _live_report(job, meta, candidate_dir, names),
        "live_feedback_note": "the candidate trained on these texts: in-sample, not gated",
        "passed": not reasons,
        "reasons": reasons,
        "notes": notes,
    }
    return Outcome(not reasons, reasons, report, candidate_dir, notes)
