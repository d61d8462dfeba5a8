"""Temperature scaling fitted on validation, expected calibration error, reliability diagrams,
and the near-tie margin of the fallback rule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ECE_BINS = 15
# Probabilities are clipped before the log so a float32 softmax that underflowed to 0 stays finite;
# the exported graph clips the same way, so served and reported confidences agree.
_EPS = 1e-12
_LOG_T_RANGE = (-3.0, 3.0)  # T from 0.05 to 20


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T): the same as dividing the logits by T (log p = logits - const)."""
    z = np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(probs: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(np.asarray(probs, dtype=np.float64)[np.arange(len(y)), y], _EPS, 1.0)
    return float(-np.log(p).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The T minimising validation NLL: a grid over log T, then golden-section refinement."""
    y = np.asarray(y)
    if len(y) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        return negative_log_likelihood(apply_temperature(probs, float(np.exp(log_t))), y)

    grid = np.linspace(*_LOG_T_RANGE, 61)
    best = int(np.argmin([nll(v) for v in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def top_two_margin(probs: np.ndarray) -> np.ndarray:
    """The top confidence minus the second of each row (the top one for a single label)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[1] < 2:
        return probs[:, 0]
    top_two = -np.partition(-probs, 1, axis=1)[:, :2]
    return np.asarray(top_two[:, 0] - top_two[:, 1])


def _falls_back(probs: np.ndarray, threshold: float, margin: float) -> np.ndarray:
    """The served rule (app.plane.ranking): under the threshold, or top two closer than margin."""
    return (np.asarray(probs).max(axis=1) < threshold) | (top_two_margin(probs) < margin)


def _rates(probs: np.ndarray, y: np.ndarray, threshold: float, margin: float) -> tuple[Any, float]:
    """(precision of the kept predictions or None, share falling back) under the rule."""
    back = _falls_back(probs, threshold, margin)
    kept = ~back
    correct = np.asarray(probs).argmax(axis=1) == np.asarray(y)
    precision = float(correct[kept].mean()) if kept.any() else None
    return precision, float(back.mean()) if len(back) else 0.0


def record_margin(
    fallback: Any,
    held: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[str]:
    """Choose the near-tie margin on the held-out predictions and record it in ``fallback``
    (training.artifact.FallbackInfo, its threshold already chosen); the warnings to report.

    Chosen as the threshold is (training.evaluate.choose_threshold), on the margin between
    the top two confidences instead of the top one: the smallest margin whose kept
    predictions reach the target precision, so that below it they would miss it. When the
    threshold and that margin together would hand more than ``max_fallback_rate`` of the
    held-out messages to a person, the margin is lowered until they do not (``target_margin``
    keeps the one the target needed). The fallback rates are then those of the threshold and
    the margin together; ``*_without_margin`` keeps the threshold's alone.
    """
    from training.evaluate import choose_threshold

    probs, y = np.asarray(held[0]), np.asarray(held[1])
    fallback.val_fallback_rate_without_margin = fallback.val_fallback_rate
    if len(y) == 0 or probs.shape[1] < 2:
        return []
    margins = top_two_margin(probs)
    correct = probs.argmax(axis=1) == y
    margin = choose_threshold(margins, correct, fallback.target_precision).threshold
    warnings = []
    limit = fallback.max_fallback_rate
    if limit is not None and _rates(probs, y, fallback.threshold, margin)[1] > limit:
        # The kept-by-threshold margins, lowest first: the margin may hand `room` more of them.
        kept = np.sort(margins[probs.max(axis=1) >= fallback.threshold])
        room = int(np.floor(limit * len(y))) - int(len(y) - len(kept))
        capped = float(kept[room]) if 0 < room < len(kept) else 0.0
        warnings.append(
            f"reaching precision {fallback.target_precision:.2f} on near ties would need margin "
            f"{margin:.4f}, which with the threshold hands more than {limit:.0%} of messages to "
            f"a person; capped at margin {capped:.4f}"
        )
        fallback.target_margin, margin = margin, capped
    fallback.margin = margin
    fallback.val_precision, fallback.val_fallback_rate = _rates(
        probs, y, fallback.threshold, margin
    )
    if test is not None:
        fallback.test_fallback_rate_without_margin = fallback.test_fallback_rate
        t_probs, t_y = test
        rates = _rates(t_probs, t_y, fallback.threshold, margin)
        fallback.test_precision, fallback.test_fallback_rate = rates
    return warnings


@dataclass
class Reliability:
    """Per-bin mean confidence, accuracy and count of the top-1 predictions."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def reliability(probs: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> Reliability:
    """Top-1 confidences in ``n_bins`` equal-width bins over (0, 1]."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin k holds (edges[k], edges[k+1]]; a confidence of exactly 0 cannot occur.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(idx, weights=correct, minlength=n_bins) / count
    return Reliability(edges, mean_conf, accuracy, count)


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE (Guo et al. 2017): sum over bins of |accuracy - confidence| weighted by bin share."""
    r = reliability(probs, y, n_bins)
    used = r.count > 0
    if not used.any():
        return 0.0
    gaps = np.abs(r.accuracy[used] - r.confidence[used])
    return float(np.sum(gaps * r.count[used]) / r.count.sum())


def calibration_metrics(
    temperature: float, before: dict[str, np.ndarray], y: dict[str, np.ndarray]
) -> dict[str, Any]:
    """metrics.json's ``calibration``: T and, per split, ECE and NLL before and after scaling."""
    out: dict[str, Any] = {"method": "temperature", "temperature": temperature, "bins": ECE_BINS}
    for split, probs in before.items():
        after = apply_temperature(probs, temperature)
        out[split] = {
            "ece_before": expected_calibration_error(probs, y[split]),
            "ece_after": expected_calibration_error(after, y[split]),
            "nll_before": negative_log_likelihood(probs, y[split]),
            "nll_after": negative_log_likelihood(after, y[split]),
        }
    return out


def with_temperature(model: Any, temperature: float) -> Any:
    """``model`` (strings -> probabilities) followed by temperature scaling, as one Keras model.

    The scaling is plain TensorFlow ops in the exported signature, so the served confidences
    are the calibrated ones and loading needs no custom objects.
    """
    import keras
    from keras import ops

    t = float(temperature)

    def scale(p: Any) -> Any:
        return ops.softmax(ops.log(ops.clip(p, _EPS, 1.0)) / t, axis=-1)

    inputs = keras.Input(shape=(), dtype="string", name="text")
    outputs = keras.layers.Lambda(scale, name="temperature_scaling", dtype="float32")(model(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_calibrated")


def plot_reliability(
    before: np.ndarray, after: np.ndarray, y: np.ndarray, temperature: float, path: Path
) -> None:
    """Reliability diagram: accuracy per confidence bin before and after temperature scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training import fonts

    fonts.use_fallback_fonts()

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    for ax, probs, title in (
        (axes[0], before, "before (T = 1)"),
        (axes[1], after, f"after temperature scaling (T = {temperature:.3f})"),
    ):
        r = reliability(probs, y)
        width = r.edges[1] - r.edges[0]
        used = r.count > 0
        ax.bar(
            r.edges[:-1][used],
            r.accuracy[used],
            width=width,
            align="edge",
            edgecolor="black",
            color="tab:blue",
            alpha=0.8,
            label="accuracy",
        )
        # Mean confidence per bin as a red dot: below the bar's top is under-confident.
        middle = r.edges[:-1][used] + width / 2
        ax.plot(middle, r.confidence[used], "o", color="tab:red", ms=4, label="mean confidence")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ece = expected_calibration_error(probs, y)
        ax.set_title(f"{title}\nECE ({ECE_BINS} bins) = {ece:.4f}")
        ax.set_xlabel("top-1 confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def calibrate(
    probs: dict[str, np.ndarray], y: dict[str, np.ndarray], fit_on: str = "val"
) -> tuple[float, dict[str, np.ndarray], dict[str, Any]]:
    """Fit T on ``probs[fit_on]``; return T, every split's calibrated probabilities, metrics."""
    temperature = fit_temperature(probs[fit_on], y[fit_on])
    after = {split: apply_temperature(p, temperature) for split, p in probs.items()}
    return temperature, after, calibration_metrics(temperature, probs, y)


def append_quality_report(
    out: Path,
    split: str,
    before: np.ndarray,
    after: np.ndarray,
    y: np.ndarray,
    calibration: dict[str, Any],
    oos: dict[str, Any] | None = None,
    fitted_on: str = "val",
) -> None:
    """Add reliability.png and the calibration (and out-of-scope) sections to ``report.md``."""
    from training.oos import render_oos_markdown

    t = calibration["temperature"]
    plot_reliability(before, after, y, t, out / "reliability.png")
    c = calibration[split]
    lines = [
        "",
        "## Calibration",
        "",
        f"Temperature scaling fitted on {fitted_on}: T = {t:.4f} (applied inside the exported "
        "model, so served confidences are calibrated; the fallback threshold was chosen on "
        f"the same calibrated {fitted_on} probabilities).",
        "",
        f"| {split} | ECE ({calibration['bins']} bins) | NLL |",
        "|---|---:|---:|",
        f"| before | {c['ece_before']:.4f} | {c['nll_before']:.4f} |",
        f"| after | {c['ece_after']:.4f} | {c['nll_after']:.4f} |",
        "",
        "![reliability diagram](reliability.png)",
        "",
    ]
    if oos:
        lines += render_oos_markdown(oos)
    with (out / "report.md").open("a", encoding="utf-8") as f:
        f.write("\n".join(lines))
