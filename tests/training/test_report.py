"""The report folder: metrics.json, valid PNG files (also with 77 labels) and report.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from training.evaluate import compute_metrics
from training.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fake_set(n_labels: int, rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % n_labels
    logits = rng.normal(size=(rows, n_labels))
    logits[np.arange(rows), y] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def _check_report(out: Path, labels: list[str]) -> dict:
    for name in ("confusion_matrix.png", "pr_curves.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 5000, name
    metrics = json.loads((out / "metrics.json").read_text())
    report = (out / "report.md").read_text()
    assert "confusion_matrix.png" in report and "pr_curves.png" in report
    for label in labels:
        assert f"| {label} |" in report
    return metrics


def test_report_files_match_the_metrics(tmp_path: Path) -> None:
    labels = ["a", "b", "c"]
    y, probs = _fake_set(3, 30)
    metrics = {"test": compute_metrics(y, probs, labels)}
    metrics["fallback"] = {"threshold": 0.5, "target_precision": 0.95, "test_precision": 0.9}
    metrics["fallback"]["test_fallback_rate"] = 0.2
    write_report(tmp_path / "r", "t", metrics, labels, y, probs)
    written = _check_report(tmp_path / "r", labels)
    assert written == json.loads(json.dumps(metrics))
    assert f"{metrics['test']['accuracy']:.4f}" in (tmp_path / "r" / "report.md").read_text()


def test_report_with_77_labels(tmp_path: Path) -> None:
    labels = [f"intent_with_a_long_name_{k}" for k in range(77)]
    y, probs = _fake_set(77, 400, seed=1)
    write_report(tmp_path, "77", {"test": compute_metrics(y, probs, labels)}, labels, y, probs)
    _check_report(tmp_path, labels)


def test_metrics_json_keeps_chinese_and_the_pr_title_counts_right(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    labels = ["订单查询", "退款", "转人工"]
    y, probs = _fake_set(3, 30)
    titles: list[str] = []
    savefig = plt.Figure.savefig

    def keep_titles(fig: plt.Figure, *args: object, **kwargs: object) -> None:
        titles.extend(ax.get_title() for ax in fig.axes)
        savefig(fig, *args, **kwargs)

    plt.Figure.savefig = keep_titles  # type: ignore[method-assign]
    try:
        write_report(tmp_path, "zh", {"test": compute_metrics(y, probs, labels)}, labels, y, probs)
    finally:
        plt.Figure.savefig = savefig  # type: ignore[method-assign]
    text = (tmp_path / "metrics.json").read_text(encoding="utf-8")
    assert "订单查询" in text and "\\u" not in text
    assert "All 3 labels, lowest average precision first" in titles
    assert not [t for t in titles if "The 3 labels with the lowest" in t]
