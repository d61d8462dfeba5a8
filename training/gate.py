"""The retrain gate: a candidate and the serving version scored on the same held-out rows.

The candidate passes when, on the held-out rows,
  accuracy  >= stable's - ``accuracy_tolerance`` (default 0.01, one point),
  macro-F1  >= stable's - ``f1_tolerance`` (default 0.02: per-label F1 moves more per row),
  fallback rate at its own threshold <= stable's at its own + ``fallback_tolerance`` (0.05:
  more hand-offs cost the support desk people).
The report also gives the paired counts (rows only one of the two gets right), so a reader
can see whether a difference is more than noise.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluate import confusion_matrix, per_class_scores

GRID_THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tolerance:
    """How much worse than stable the candidate may be and still pass."""

    accuracy: float = 0.01
    macro_f1: float = 0.02
    fallback_rate: float = 0.05


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
class Scored:
    """A version's predicted labels and confidences of some texts, and its threshold."""

    pred: list[str]
    confidence: np.ndarray
    threshold: float


def score_version(version_dir: Path, texts: list[str]) -> Scored:
    from training.scoring import SavedClassifier

    model = SavedClassifier(version_dir)
    probs = model.predict(texts) if texts else np.zeros((0, len(model.labels)), np.float32)
    pred = [model.labels[k] for k in probs.argmax(axis=1)] if texts else []
    return Scored(pred, probs.max(axis=1), model.metadata.fallback.threshold)


def compare(
    truth: list[str], stable: Scored, candidate: Scored, names: list[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, fallback rates, per-label F1 changes and the disagreements."""
    s, c = _scores(truth, stable.pred, names), _scores(truth, candidate.pred, names)
    thresholds = sorted(
        {round(stable.threshold, 4), round(candidate.threshold, 4), *GRID_THRESHOLDS}
    )

    def fallback(x: Scored) -> dict[str, float]:
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
