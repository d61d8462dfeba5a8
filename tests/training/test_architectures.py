"""Each extra architecture trains on the bundled example and round-trips through export."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.model_factory import TINY_PARAMS, tiny_config
from training import architectures, artifact
from training.architectures.ensemble import AveragingEnsemble
from training.architectures.ngram import split_char_ngrams, standardize_chars
from training.calibration import expected_calibration_error
from training.data import EXAMPLE_DIR, EXAMPLE_TEST, EXAMPLE_TRAIN, load_dataset
from training.export import save_serving_model
from training.train import train

# Architectures whose export loads with plain TensorFlow; the encoder (custom ops, an optional
# extra, a pretrained model) has its own module, tests/training/test_encoder.py.
PLAIN_ARCHS = [a for a in architectures.names() if not architectures.get(a).op_libraries]

MIXED_SCRIPTS = [
    "我的iPhone屏幕碎了",
    "パスワードを忘れました",
    "ฉันลืมรหัสผ่าน",
    "订单12345在3月5日发货了吗？",
    "card lost 😡😡",
    "카드를 잃어버렸어요",
]
PARAMS = replace(TINY_PARAMS, kernel_sizes=(2, 3), dense_units=32)
# Every arch passes 0.9 test accuracy by its third epoch on the example (seed 0).
EPOCHS = 3


@pytest.fixture(scope="module")
def example() -> dict[str, object]:
    train, test = load_dataset(EXAMPLE_TRAIN), load_dataset(EXAMPLE_TEST)
    labels = sorted(set(train.labels))
    index = {lab: k for k, lab in enumerate(labels)}
    return {
        "labels": labels,
        "x": train.texts,
        "y": np.array([index[lab] for lab in train.labels]),
        "x_test": test.texts,
        "y_test": np.array([index[lab] for lab in test.labels]),
    }


@pytest.fixture(scope="module")
def trained(example: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """arch -> (Keras model, export path, test probabilities from Keras), trained a few epochs."""
    out = {}
    root = tmp_path_factory.mktemp("archs")
    keras.utils.set_random_seed(0)
    for arch in PLAIN_ARCHS:
        model = architectures.get(arch).load()(example["x"], len(example["labels"]), PARAMS)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(tf.constant(example["x"]), example["y"], batch_size=32, epochs=EPOCHS, verbose=0)
        path = root / arch
        save_serving_model(model, path)
        probs = model.predict(tf.constant(example["x_test"]), batch_size=64, verbose=0)
        out[arch] = (model, path, probs)
    return out


@pytest.mark.parametrize("arch", PLAIN_ARCHS)
def test_arch_learns_the_example(arch: str, trained: dict, example: dict) -> None:
    _, _, probs = trained[arch]
    assert probs.shape == (len(example["x_test"]), len(example["labels"]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # 14 balanced labels: chance is ~0.07; three tiny epochs must do far better.
    assert (probs.argmax(axis=1) == example["y_test"]).mean() > 0.5, arch


@pytest.mark.parametrize("arch", PLAIN_ARCHS)
def test_export_signature_matches_the_model(arch: str, trained: dict, example: dict) -> None:
    _, path, probs = trained[arch]
    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures[artifact.SIGNATURE_KEY]
    result = serve(**{artifact.INPUT_KEY: tf.constant(example["x_test"])})
    np.testing.assert_allclose(result[artifact.OUTPUT_KEY].numpy(), probs, atol=1e-5)


def test_exports_load_in_a_fresh_process_without_project_code(
    trained: dict, example: dict, tmp_path: Path
) -> None:
    """Custom split/standardize functions and layers must be graph ops, not Python objects;
    texts in every script (the tokenizer's regexes) give the same probabilities there."""
    texts = example["x_test"][:5] + MIXED_SCRIPTS
    script = (
        "import json, sys, tensorflow as tf\n"
        "out = {}\n"
        "for arch, path in json.loads(sys.argv[1]).items():\n"
        "    f = tf.saved_model.load(path).signatures['serving_default']\n"
        f"    out[arch] = f(text=tf.constant({texts!r}))['probabilities'].numpy().tolist()\n"
        "print(json.dumps(out))\n"
    )
    paths = {arch: str(path) for arch, (_, path, _) in trained.items()}
    # -I: isolated mode, so neither this project nor the tests' modules are importable there.
    done = subprocess.run(
        [sys.executable, "-I", "-c", script, json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    for arch, (model, _, _) in trained.items():
        want = model.predict(tf.constant(texts), verbose=0)
        np.testing.assert_allclose(np.array(got[arch]), want, atol=1e-5)


def test_ensemble_averages_its_members(trained: dict, example: dict) -> None:
    model, _, probs = trained["ensemble"]
    assert isinstance(model, AveragingEnsemble)
    x = tf.constant(example["x_test"])
    members = [m.predict(x, batch_size=64, verbose=0) for m in model.members]
    assert len(members) >= 2
    np.testing.assert_allclose(np.mean(members, axis=0), probs, atol=1e-5)
    # Trained on the sum of their own losses, each member classifies well on its own.
    for m in members:
        assert (m.argmax(axis=1) == example["y_test"]).mean() > 0.5


def test_char_ngrams_cover_word_edges() -> None:
    grams = split_char_ngrams(standardize_chars(tf.constant(["Hi  Bob"]))).to_list()[0]
    grams = [g.decode() for g in grams]
    assert " h" in grams and "i b" in grams and "bob " in grams and " bob " in grams
    assert all(2 <= len(g) <= 5 for g in grams)


def test_pipeline_trains_an_ensemble_with_calibration_and_oos(tmp_path: Path) -> None:
    """``textcls train --arch ensemble --oos-data``: calibrated export, report and metrics.
    Two epochs: what it checks is that they agree with each other, not how well it learns."""
    cfg = tiny_config(
        tmp_path, arch="ensemble", epochs=2, oos_data=EXAMPLE_DIR / "support_chat_oos.csv"
    )
    cfg.params = PARAMS
    version = train(cfg, log=lambda _message: None)
    meta = artifact.read_metadata(version)
    calibration, oos = meta.metrics["calibration"], meta.metrics["oos"]
    assert calibration["temperature"] > 0
    assert set(calibration["test"]) >= {"ece_before", "ece_after"}
    assert oos["oos_rows"] == 60 and 0.0 <= oos["oos_recall"] <= 1.0
    assert oos["threshold"] == pytest.approx(meta.fallback.threshold)
    report = version / artifact.REPORT_DIR
    assert (report / "reliability.png").stat().st_size > 0
    assert "## Calibration" in (report / "report.md").read_text(encoding="utf-8")
    # The exported signature serves calibrated probabilities: those the metrics were made of.
    serve = tf.saved_model.load(str(version)).signatures[artifact.SIGNATURE_KEY]
    test = load_dataset(EXAMPLE_TEST)
    probs = serve(text=tf.constant(test.texts))[artifact.OUTPUT_KEY].numpy()
    y = np.array([meta.labels.index(label) for label in test.labels])
    assert (probs.argmax(axis=1) == y).mean() == pytest.approx(meta.metrics["test"]["accuracy"])
    assert expected_calibration_error(probs, y) == pytest.approx(
        calibration["test"]["ece_after"], abs=1e-4
    )


def test_registry_lists_every_arch_and_reports_flags_it_does_not_read() -> None:
    assert architectures.names() == [
        "cnn", "encoder", "ensemble", "ngram", "textcnn", "transformer"
    ]  # fmt: skip
    assert PLAIN_ARCHS == ["cnn", "ensemble", "ngram", "textcnn", "transformer"]
    assert architectures.unused_flags(
        "textcnn", ["kernel_sizes", "embedding_dropout", "filters"]
    ) == [
        "embedding_dropout",
        "kernel_sizes",
    ]
    assert architectures.unused_flags("cnn", ["kernel_sizes", "learning_rate"]) == []
    with pytest.raises(ValueError, match="known: cnn, encoder, ensemble"):
        architectures.get("cnn9")


def test_training_names_the_flags_the_arch_ignores() -> None:
    from training.config import TrainConfig
    from training.params import ModelParams
    from training.stages.prepare import unused_model_flags

    params = ModelParams(kernel_sizes=(2, 4), embedding_dropout=0.3, filters=64)
    assert unused_model_flags(TrainConfig(arch="textcnn", params=params)) == [
        "--embedding-dropout",
        "--kernel-sizes",
    ]
    assert unused_model_flags(TrainConfig(arch="cnn", params=params)) == []
    assert unused_model_flags(TrainConfig(arch="ngram", params=ModelParams())) == []
