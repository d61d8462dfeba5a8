"""The evaluation report folder: metrics.json, confusion_matrix.png, pr_curves.png, report.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from training import fonts  # noqa: E402
from training.evaluate import pr_curve  # noqa: E402

fonts.use_fallback_fonts()

_WORST_SHOWN = 8


def plot_confusion_matrix(cm: np.ndarray, labels: list[str], path: Path) -> None:
    """Row-normalised confusion matrix; the figure grows with the number of labels."""
    labels, _ = fonts.plot_labels(labels)
    n = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = max(6.0, 0.22 * n + 3)
    font = 8 if n <= 30 else 6 if n <= 60 else 5
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (share of each true label)")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    color = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pr_curves(y_true: np.ndarray, probs: np.ndarray, labels: list[str], path: Path) -> None:
    """Left: micro-average PR curve. Right: the classes with the lowest average precision."""
    labels, _ = fonts.plot_labels(labels)
    n = len(labels)
    curves = [pr_curve(y_true == k, probs[:, k]) for k in range(n)]
    present = [k for k in range(n) if (y_true == k).any()]
    worst = sorted(present, key=lambda k: curves[k][2])[:_WORST_SHOWN]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    p, r, ap = pr_curve(np.eye(n, dtype=bool)[y_true].ravel(), probs.ravel())
    left.plot(
        r, p, color="black", lw=2, drawstyle="steps-post", label=f"micro-average (AP {ap:.3f})"
    )
    for k in present:
        left.plot(
            curves[k][1], curves[k][0], color="tab:blue", alpha=0.15, lw=0.8, drawstyle="steps-post"
        )
    left.set_title(f"Precision-recall, all {len(present)} labels (faint: each label)")
    for k in worst:
        right.plot(
            curves[k][1],
            curves[k][0],
            lw=1.5,
            drawstyle="steps-post",
            label=f"{labels[k]} (AP {curves[k][2]:.3f})",
        )
    if len(worst) < len(present):
        right.set_title(f"The {len(worst)} labels with the lowest average precision")
    else:
        right.set_title(f"All {len(worst)} labels, lowest average precision first")
    for ax in (left, right):
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1.01)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_markdown(title: str, metrics: dict[str, Any], labels: list[str]) -> str:
    """report.md: headline figures, fallback, per-class table (worst F1 first)."""
    test = metrics.get("test", {})
    lines = [f"# {title}", ""]
    evaluation = metrics.get("evaluation", {})
    if evaluation.get("how"):
        lines += [f"How these figures were obtained: {evaluation['how']}.", ""]
        if evaluation.get("test"):
            lines += [f"Test rows: {evaluation['test']}.", ""]
    lines += ["| split | rows | accuracy | macro-F1 |", "|---|---:|---:|---:|"]
    names = {"cv": "cross-validation (out-of-fold)"}
    for split in ("cv", "val", "test"):
        m = metrics.get(split)
        if m and not (split == "test" and m is metrics.get("cv")):
            lines.append(
                f"| {names.get(split, split)} | {m['rows']} | {m['accuracy']:.4f} "
                f"| {m['macro_f1']:.4f} |"
            )
    fb = metrics.get("fallback")
    if fb:
        chosen_on = names.get(fb.get("chosen_on") or "val", "val")
        lines += [
            "",
            f"Fallback threshold **{fb['threshold']:.4f}** and near-tie margin "
            f"**{fb.get('margin', 0.0):.4f}** (chosen on {chosen_on} for target precision "
            f"{fb['target_precision']:.2f}): a message falls back when its top confidence is "
            "under the threshold or the top two are closer than the margin.",
        ]
        if fb.get("target_threshold") is not None:
            lines.append(
                f"**The target precision is out of reach for most messages**: it needs threshold "
                f"{fb['target_threshold']:.4f}, which would hand more than "
                f"{fb['max_fallback_rate']:.0%} of them to a person; the threshold is capped "
                "there instead. More labelled examples per label raise the precision."
            )
        held = fb.get("chosen_on") or "val"
        for split, key in ((held, "val"), ("test", "test")):
            prec, rate = fb.get(f"{key}_precision"), fb.get(f"{key}_fallback_rate")
            if rate is not None:
                shown = "n/a" if prec is None else f"{prec:.4f}"
                alone = fb.get(f"{key}_fallback_rate_without_margin")
                without = "" if alone is None else f" ({alone:.4f} with the threshold alone)"
                lines.append(
                    f"- {names.get(split, split)}: precision of kept {shown}, "
                    f"share falling back {rate:.4f}{without}"
                )
    for warning in evaluation.get("warnings", []):
        lines += ["", f"> warning: {warning}"]
    per_class = test.get("per_class", {})
    if per_class:
        lines += [
            "",
            "## Per class (test, lowest F1 first)",
            "",
            "| label | precision | recall | F1 | support |",
            "|---|---:|---:|---:|---:|",
        ]
        for label in sorted(labels, key=lambda lab: per_class[lab]["f1"]):
            c = per_class[label]
            lines.append(
                f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} "
                f"| {c['support']} |"
            )
    _, indexed = fonts.plot_labels(labels)
    if indexed:
        lines += [
            "",
            "## Label index (the plots show numbers: no installed font draws every label)",
            "",
            "| index | label |",
            "|---:|---|",
            *(f"| {i} | {lab} |" for i, lab in enumerate(labels)),
        ]
    lines += [
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "![PR curves](pr_curves.png)",
        "",
    ]
    return "\n".join(lines)


def write_report(
    out: Path,
    title: str,
    metrics: dict[str, Any],
    labels: list[str],
    y_true: np.ndarray,
    probs: np.ndarray,
) -> None:
    """Write the four report files into ``out`` for the set (y_true, probs), usually test."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(metrics, indent=2, ensure_ascii=False)  # labels in their own script
    (out / "metrics.json").write_text(text + "\n", encoding="utf-8")
    cm = np.asarray(metrics["test"]["confusion_matrix"])
    plot_confusion_matrix(cm, labels, out / "confusion_matrix.png")
    plot_pr_curves(np.asarray(y_true), probs, labels, out / "pr_curves.png")
    (out / "report.md").write_text(render_markdown(title, metrics, labels), encoding="utf-8")
