"""The retrain gate: original data + feedback corrections -> candidate -> compared with stable.

``retrain`` trains a candidate with the serving version's own parameters (its metadata) on
the original training file with every correction applied (a correction of a text that is in
the file replaces that row's label; a new text is added), evaluates the candidate and the
serving version on the same held-out rows, and decides whether the candidate may be published.

Held-out rows, in order of preference: a test file given here; the test file the serving
version was evaluated on (``params.sources.test``); else the serving version's own test split
of the original file, reproduced with its seed and fractions (only when the file is byte for
byte the one it trained on, so nothing it trained on is tested on). Held-out texts are never
trained on, even when a correction names them. The feedback-labelled live texts are scored
too and reported separately: the candidate trained on them, so that score is in-sample and
does not decide anything.

The gate (documented in the README): the candidate passes when, on the held-out rows,
  accuracy  >= stable's - ``accuracy_tolerance`` (default 0.01, one point),
  macro-F1  >= stable's - ``f1_tolerance`` (default 0.02: per-label F1 moves more per row),
  fallback rate at its own threshold <= stable's at its own + ``fallback_tolerance`` (0.05:
  more hand-offs cost the support desk people).
The report also gives the paired counts (rows only one of the two gets right), so a reader
can see whether a difference is more than noise.

This module does not publish or label anything: the caller does, when ``passed``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training import artifact
from training.data import DataError, load_dataset
from training.evaluate import confusion_matrix, per_class_scores
from training.params import ModelParams
from training.pipeline import TrainConfig, train
from training.split import stratified_split

GRID_THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
# TrainConfig fields a retrain never copies from the serving version's metadata.
# The strategy too: a retrain runs on one machine (a multiworker run needs its TF_CONFIG).
_NOT_COPIED = {
    "data",
    "model_dir",
    "name",
    "val_data",
    "test_data",
    "oos_data",
    "params",
    "verbose",
    "strategy",
}


class RetrainError(Exception):
    """Retraining cannot run as asked; the message says why (not a refusal by the gate)."""


@dataclass(frozen=True, slots=True)
class Correction:
    """The newest correction of one text: its correct label (and what was predicted)."""

    text: str
    label: str
    predicted: str | None = None


@dataclass(frozen=True, slots=True)
class Tolerance:
    accuracy: float = 0.01
    macro_f1: float = 0.02
    fallback_rate: float = 0.05


@dataclass
class Outcome:
    """What retraining did: the candidate (in a staging folder), the comparison, the verdict."""

    passed: bool
    reasons: list[str]
    report: dict[str, Any]
    candidate_dir: Path | None
    notes: list[str] = field(default_factory=list)


def config_like(meta: artifact.Metadata, **fields: Any) -> TrainConfig:
    """A TrainConfig with every training parameter the serving version recorded.

    Copies whatever ``metadata.params`` holds that is a TrainConfig or ModelParams field,
    so parameters added to the trainer later carry over without a change here.
    """
    params = dict(meta.params)
    model_fields = {f.name for f in dataclasses.fields(ModelParams)}
    model_params = ModelParams(**{k: v for k, v in params.items() if k in model_fields})
    if "kernel_sizes" in params:
        model_params.kernel_sizes = tuple(params["kernel_sizes"])
    cfg = TrainConfig(arch=meta.arch, params=model_params, verbose=False)
    for f in dataclasses.fields(TrainConfig):
        if f.name in params and f.name not in _NOT_COPIED:
            setattr(cfg, f.name, params[f.name])
    for key, value in fields.items():
        setattr(cfg, key, value)
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


def _scores(labels_true: list[str], pred: list[str], names: list[str]) -> dict[str, Any]:
    index = {n: i for i, n in enumerate(names)}
    cm = confusion_matrix(
        np.array([index[t] for t in labels_true], dtype=np.int64),
        np.array([index[p] for p in pred], dtype=np.int64),
        len(names),
    )
    per = per_class_scores(cm)
    present = per["support"] > 0
    return {
        "rows": len(labels_true),
        "accuracy": float(np.trace(cm) / max(len(labels_true), 1)),
        "macro_f1": float(per["f1"][present].mean()) if present.any() else 0.0,
        "f1": {n: float(per["f1"][i]) for i, n in enumerate(names) if present[i]},
    }


@dataclass
class _Scored:
    pred: list[str]
    confidence: np.ndarray
    threshold: float


def _predict(version_dir: Path, texts: list[str]) -> _Scored:
    from training.scoring import SavedClassifier

    model = SavedClassifier(version_dir)
    probs = model.predict(texts) if texts else np.zeros((0, len(model.labels)), np.float32)
    pred = [model.labels[k] for k in probs.argmax(axis=1)] if texts else []
    return _Scored(pred, probs.max(axis=1), model.metadata.fallback.threshold)


def compare(
    truth: list[str], stable: _Scored, candidate: _Scored, names: list[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, fallback rates, per-label F1 changes and the disagreements."""
    s, c = _scores(truth, stable.pred, names), _scores(truth, candidate.pred, names)
    thresholds = sorted(
        {round(stable.threshold, 4), round(candidate.threshold, 4), *GRID_THRESHOLDS}
    )

    def fallback(x: _Scored) -> dict[str, float]:
        n = max(len(truth), 1)
        return {f"{t:g}": float((x.confidence < t).sum() / n) for t in thresholds}

    s_right = np.array([p == t for p, t in zip(stable.pred, truth, strict=True)], bool)
    c_right = np.array([p == t for p, t in zip(candidate.pred, truth, strict=True)], bool)
    disagree = Counter(
        (t, sp, cp)
        for t, sp, cp in zip(truth, stable.pred, candidate.pred, strict=True)
        if sp != cp
    )
    per_label = {
        n: {"stable": s["f1"].get(n, 0.0), "candidate": c["f1"].get(n, 0.0)}
        for n in sorted(set(s["f1"]) | set(c["f1"]))
    }
    for v in per_label.values():
        v["change"] = v["candidate"] - v["stable"]
    n = max(len(truth), 1)
    return {
        "rows": len(truth),
        "stable": {k: s[k] for k in ("accuracy", "macro_f1")},
        "candidate": {k: c[k] for k in ("accuracy", "macro_f1")},
        "thresholds": {"stable": stable.threshold, "candidate": candidate.threshold},
        "fallback_rate": {
            "stable": fallback(stable),
            "candidate": fallback(candidate),
            "stable_at_own": float((stable.confidence < stable.threshold).sum() / n),
            "candidate_at_own": float((candidate.confidence < candidate.threshold).sum() / n),
        },
        "paired": {
            "only_stable_right": int((s_right & ~c_right).sum()),
            "only_candidate_right": int((c_right & ~s_right).sum()),
            "both_right": int((s_right & c_right).sum()),
            "both_wrong": int((~s_right & ~c_right).sum()),
        },
        "per_label_f1": per_label,
        "disagreements": [
            {"true": t, "stable": sp, "candidate": cp, "rows": k}
            for (t, sp, cp), k in disagree.most_common(20)
        ],
    }


def verdict(held_out: dict[str, Any], tol: Tolerance) -> list[str]:
    """Why the candidate is worse than stable beyond the tolerance; empty when it passes."""
    s, c, fb = held_out["stable"], held_out["candidate"], held_out["fallback_rate"]
    reasons = []
    if c["accuracy"] < s["accuracy"] - tol.accuracy:
        reasons.append(
            f"accuracy {c['accuracy']:.4f} is below stable's {s['accuracy']:.4f} by more than "
            f"{tol.accuracy:g}"
        )
    if c["macro_f1"] < s["macro_f1"] - tol.macro_f1:
        reasons.append(
            f"macro-F1 {c['macro_f1']:.4f} is below stable's {s['macro_f1']:.4f} by more than "
            f"{tol.macro_f1:g}"
        )
    if fb["candidate_at_own"] > fb["stable_at_own"] + tol.fallback_rate:
        reasons.append(
            f"fallback rate {fb['candidate_at_own']:.1%} at its threshold is above stable's "
            f"{fb['stable_at_own']:.1%} by more than {tol.fallback_rate:g}"
        )
    return reasons


def retrain(
    stable_dir: Path,
    original: Path,
    corrections: Sequence[Correction],
    staging: Path,
    test_data: Path | None = None,
    tolerance: Tolerance = Tolerance(),
    log: Callable[[str], None] = print,
) -> Outcome:
    """Train and judge a candidate; it is left in ``staging`` (a model_dir) for the caller."""
    meta = artifact.read_metadata(stable_dir)
    try:
        rows, held = held_out_rows(meta, original, test_data)
    except DataError as exc:
        raise RetrainError(str(exc)) from exc
    held_set = set(held.texts)
    training_rows, counts = apply_corrections(rows, corrections, held_set, set(meta.labels))
    notes = []
    if counts.get("unknown_label"):
        notes.append(f"{counts['unknown_label']} corrections name labels the model lacks: unused")
    if counts.get("held_out"):
        notes.append(f"{counts['held_out']} corrected texts are held-out rows: not trained on")
    staging.mkdir(parents=True, exist_ok=True)
    data_file, test_file = staging / "retrain-data.csv", staging / "retrain-held-out.csv"
    _write_csv(data_file, training_rows)
    _write_csv(test_file, list(zip(held.texts, held.labels, strict=True)))
    cfg = config_like(
        meta,
        data=data_file,
        test_data=test_file,
        model_dir=staging,
        name=meta.name,
        text_column="text",
        label_column="label",
    )
    log(
        f"training a candidate ({meta.arch}, version {meta.version}'s parameters) on "
        f"{len(training_rows)} rows: {counts.get('relabelled', 0)} relabelled, "
        f"{counts.get('added', 0)} added from feedback"
    )
    try:
        candidate_dir = train(cfg, log=lambda _m: None)
    except DataError as exc:
        raise RetrainError(f"the corrected data cannot be trained on: {exc}") from exc
    names = sorted(set(meta.labels) | set(held.labels))
    stable_scored = _predict(stable_dir, held.texts)
    cand_scored = _predict(candidate_dir, held.texts)
    held_report = compare(held.labels, stable_scored, cand_scored, names)
    usable = [c for c in corrections if c.label in set(meta.labels)]
    live_truth = [c.label for c in usable]
    live_texts = [c.text for c in usable]
    live_report = (
        compare(
            live_truth, _predict(stable_dir, live_texts), _predict(candidate_dir, live_texts), names
        )
        if usable
        else None
    )
    reasons = verdict(held_report, tolerance)
    report = {
        "model": meta.name,
        "stable_version": meta.version,
        "held_out_source": held.source,
        "training_rows": len(training_rows),
        "corrections": {"given": len(corrections), **counts},
        "tolerance": dataclasses.asdict(tolerance),
        "held_out": held_report,
        "live_feedback": live_report,
        "live_feedback_note": "the candidate trained on these texts: in-sample, not gated",
        "passed": not reasons,
        "reasons": reasons,
        "notes": notes,
    }
    return Outcome(not reasons, reasons, report, candidate_dir, notes)


def render_markdown(report: dict[str, Any]) -> str:
    """The comparison as a short Markdown page (also printed by ``textcls retrain``)."""
    h = report["held_out"]
    lines = [
        f"# Retrain of {report['model']}: candidate vs stable version {report['stable_version']}",
        "",
        f"Held-out rows: {h['rows']} from {report['held_out_source']}. "
        f"Training rows: {report['training_rows']}. Corrections: {report['corrections']}.",
        "",
        "| held-out | stable | candidate |",
        "|---|---|---|",
        f"| accuracy | {h['stable']['accuracy']:.4f} | {h['candidate']['accuracy']:.4f} |",
        f"| macro-F1 | {h['stable']['macro_f1']:.4f} | {h['candidate']['macro_f1']:.4f} |",
        f"| fallback at own threshold | {h['fallback_rate']['stable_at_own']:.1%} "
        f"({h['thresholds']['stable']:.3f}) | {h['fallback_rate']['candidate_at_own']:.1%} "
        f"({h['thresholds']['candidate']:.3f}) |",
    ]
    for t, rate in h["fallback_rate"]["stable"].items():
        lines.append(
            f"| fallback below {t} | {rate:.1%} | {h['fallback_rate']['candidate'][t]:.1%} |"
        )
    p = h["paired"]
    lines += [
        "",
        f"Rows only stable gets right: {p['only_stable_right']}; only the candidate: "
        f"{p['only_candidate_right']}; both: {p['both_right']}; neither: {p['both_wrong']}.",
    ]
    live = report.get("live_feedback")
    if live:
        lines += [
            "",
            f"Feedback-labelled live texts ({live['rows']}, in-sample for the candidate): "
            f"accuracy {live['stable']['accuracy']:.4f} -> {live['candidate']['accuracy']:.4f}.",
        ]
    changed = [(n, v) for n, v in h["per_label_f1"].items() if abs(v["change"]) >= 0.005]
    if changed:
        lines += ["", "| label | F1 stable | F1 candidate | change |", "|---|---|---|---|"]
        for n, v in sorted(changed, key=lambda item: item[1]["change"]):
            lines.append(f"| {n} | {v['stable']:.3f} | {v['candidate']:.3f} | {v['change']:+.3f} |")
    if h["disagreements"]:
        lines += ["", "| true | stable says | candidate says | rows |", "|---|---|---|---|"]
        for d in h["disagreements"]:
            lines.append(f"| {d['true']} | {d['stable']} | {d['candidate']} | {d['rows']} |")
    lines += [
        "",
        "**Passed**" if report["passed"] else "**Refused**: " + "; ".join(report["reasons"]),
    ]
    for note in report["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "comparison.md").write_text(render_markdown(report), encoding="utf-8")
