"""Out-of-scope scoring: how the fallback treats texts that belong to no class (as in CLINC150)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from training.data import DataError, detect_format


def load_oos_texts(
    path: Path | str, text_column: str = "text", fmt: str | None = None
) -> list[str]:
    """Texts of a CSV/TSV/JSONL file of out-of-scope messages (other columns are ignored)."""
    path = Path(path)
    fmt = detect_format(path, fmt)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, [(None, f"cannot read the file as UTF-8: {exc}")]) from exc
    texts: list[str] = []
    if fmt == "jsonl":
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, [(number, f"not valid JSON: {exc.msg}")]) from exc
            if not isinstance(obj, dict) or not isinstance(obj.get(text_column), str):
                raise DataError(
                    path, [(number, f"expected an object with a string {text_column!r}")]
                )
            texts.append(obj[text_column])
    else:
        reader = csv.DictReader(
            io.StringIO(raw, newline=""), delimiter="\t" if fmt == "tsv" else ","
        )
        if text_column not in (reader.fieldnames or []):
            raise DataError(
                path, [(1, f"no {text_column!r} column; the header has {reader.fieldnames}")]
            )
        texts = [row[text_column] or "" for row in reader]
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise DataError(path, [(None, "no out-of-scope texts in the file")])
    return texts


def score_oos(
    in_probs: np.ndarray, in_y: np.ndarray, oos_probs: np.ndarray, threshold: float
) -> dict[str, Any]:
    """In-scope accuracy and out-of-scope recall at the fallback ``threshold``.

    As in Larson et al. (2019, CLINC150): an in-scope text counts as correct only when its
    top label is right AND it does not fall back; an out-of-scope text is recalled when it
    falls back (top confidence below the threshold), since the fallback is our "no class".
    """
    in_probs, oos_probs = np.asarray(in_probs), np.asarray(oos_probs)
    in_conf = in_probs.max(axis=1)
    kept = in_conf >= threshold
    right = in_probs.argmax(axis=1) == np.asarray(in_y)
    oos_conf = oos_probs.max(axis=1)
    return {
        "threshold": float(threshold),
        "in_scope_rows": int(len(in_conf)),
        "oos_rows": int(len(oos_conf)),
        "in_scope_accuracy": float((right & kept).mean()) if len(right) else 0.0,
        "in_scope_accuracy_without_fallback": float(right.mean()) if len(right) else 0.0,
        "in_scope_fallback_rate": float(1.0 - kept.mean()) if len(kept) else 0.0,
        "oos_recall": float((oos_conf < threshold).mean()),
        "oos_mean_confidence": float(oos_conf.mean()),
    }


def render_oos_markdown(m: dict[str, Any]) -> list[str]:
    """The report.md section for ``score_oos``'s result."""
    return [
        "## Out-of-scope texts",
        "",
        f"{m['oos_rows']} out-of-scope texts, {m['in_scope_rows']} in-scope test texts, "
        f"fallback threshold {m['threshold']:.4f} (as Larson et al. 2019 report CLINC150).",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| out-of-scope recall (fall back) | {m['oos_recall']:.4f} |",
        f"| in-scope accuracy (a fallback counts as wrong) | {m['in_scope_accuracy']:.4f} |",
        f"| in-scope accuracy ignoring the fallback | "
        f"{m['in_scope_accuracy_without_fallback']:.4f} |",
        f"| in-scope share falling back | {m['in_scope_fallback_rate']:.4f} |",
        f"| mean top confidence on out-of-scope texts | {m['oos_mean_confidence']:.4f} |",
        "",
    ]
