"""app.plane.drift: the sliding window's running counts and distances."""

from __future__ import annotations

import numpy as np
import pytest

from app.metrics import Metrics
from app.plane.drift import DriftWindow, describe
from app.plane.ranking import RankedPrediction
from training.reference import Reference, confidence_bins, distances

REFERENCE = Reference(
    held_out="test",
    rows=100,
    label_shares={"card": 0.5, "refund": 0.5},
    confidence_shares=[0.0] * 9 + [0.2, 0.3, 0.5],
    fallback_rate=0.1,
    coverage=0.9,
    vocabulary=["my", "card", "refund", "lost", "where"],
)


def _prediction(label: str, confidence: float, threshold: float = 0.9) -> RankedPrediction:
    return RankedPrediction(
        label=label, confidence=confidence, fallback=confidence < threshold, ranking=[]
    )


def _in_distribution(rng: np.random.Generator, n: int) -> tuple[list[str], list[RankedPrediction]]:
    texts = [str(rng.choice(["my card lost", "where refund", "lost card"])) for _ in range(n)]
    conf = rng.choice([0.92, 0.97, 0.995], size=n, p=[0.2, 0.3, 0.5])
    labels = rng.choice(["card", "refund"], size=n)
    return texts, [_prediction(str(lab), float(c)) for lab, c in zip(labels, conf, strict=True)]


def test_no_signal_before_min_texts_then_in_distribution_stays_under() -> None:
    metrics = Metrics()
    window = DriftWindow(REFERENCE, model="m", version=1, size=200, min_texts=100, metrics=metrics)
    rng = np.random.default_rng(0)
    window.observe(*_in_distribution(rng, 99))
    assert window.reading().signals is None
    window.observe(*_in_distribution(rng, 500))
    reading = window.reading()
    assert reading.texts == 200 and reading.signals is not None
    shown = describe(reading)["signals"]
    assert isinstance(shown, dict)
    assert not any(s["alerting"] for s in shown.values()), shown
    body = metrics.render(None)[0].decode()
    assert 'textcls_drift{model="m",signal="labels",version="1"}' in body
    assert 'textcls_drift_window_texts{model="m",version="1"} 200.0' in body


def test_another_domain_crosses_the_levels_within_one_window() -> None:
    window = DriftWindow(REFERENCE, model="m", version=1, size=200, min_texts=100)
    rng = np.random.default_rng(1)
    window.observe(*_in_distribution(rng, 200))
    calm = window.reading().signals
    foreign = ["我的订单在哪里"] * 100
    window.observe(foreign, [_prediction("refund", 0.4) for _ in foreign])
    shown = describe(window.reading())["signals"]
    assert isinstance(shown, dict) and calm is not None
    assert [s for s, v in shown.items() if v["alerting"]] == [
        "confidence",
        "fallback_rate",
        "coverage",
    ], shown
    # Half the texts on one of two labels: a moderate label shift, over the calm value.
    assert shown["labels"]["value"] > calm["labels"] + 0.1


def test_running_counts_match_a_recount_of_the_last_texts() -> None:
    window = DriftWindow(REFERENCE, model="m", version=1, size=50, min_texts=10)
    rng = np.random.default_rng(2)
    texts, preds = [], []
    for _ in range(7):
        t, p = _in_distribution(rng, 23)
        p = [_prediction("other" if i % 5 == 0 else x.label, x.confidence) for i, x in enumerate(p)]
        window.observe(t, p)
        texts += t
        preds += p
    last_t, last_p = texts[-50:], preds[-50:]
    labels = np.array([[x.label == lab for lab in ("card", "refund")] for x in last_p]).mean(0)
    bins = np.bincount(confidence_bins(np.array([x.confidence for x in last_p])), minlength=12)
    vocab = set(REFERENCE.vocabulary)
    cov = np.mean([sum(w in vocab for w in t.split()) / len(t.split()) for t in last_t])
    expected = distances(
        REFERENCE,
        label_shares=labels,
        confidence_shares=bins / 50,
        fallback_rate=float(np.mean([x.fallback for x in last_p])),
        coverage=float(cov),
    )
    got = window.reading().signals
    assert got is not None
    for signal, value in expected.items():
        assert got[signal] == pytest.approx(value), signal


def test_a_retired_version_drops_its_series() -> None:
    metrics = Metrics()
    window = DriftWindow(REFERENCE, model="m", version=3, size=100, min_texts=10, metrics=metrics)
    window.observe(*_in_distribution(np.random.default_rng(3), 20))
    assert 'version="3"' in metrics.render(None)[0].decode()
    window.retire("m", 3)
    body = metrics.render(None)[0].decode()
    assert "textcls_drift{" not in body and "textcls_drift_window_texts{" not in body
