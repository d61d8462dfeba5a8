"""End to end on tiny real models: versions, atomic export, reload equality, reproducibility."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.model_factory import TINY_PARAMS, tiny_config, train_tiny_model
from training import artifact
from training.data import EXAMPLE_TEST, EXAMPLE_TRAIN, DataError, load_dataset
from training.export import export_version
from training.model import build_model
from training.scoring import predict_probabilities
from training.train import train

SAMPLE = ["where is my order??", "I lost my card yesterday", "talk to a human", "refund", ""]


def _metadata(labels: list[str]) -> artifact.Metadata:
    return artifact.Metadata(
        name="x",
        version=1,
        labels=labels,
        created_at=artifact.utc_now_iso(),
        tensorflow_version=tf.__version__,
        data=artifact.DataInfo(file="f", sha256="0" * 64, rows={"train": 1}),
        fallback=artifact.FallbackInfo(threshold=0.5, target_precision=0.95),
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[keras.Model, list[str]]:
    """A tiny Keras model fitted for two epochs on the example data (not exported)."""
    ds = load_dataset(EXAMPLE_TRAIN)
    labels = sorted(set(ds.labels))
    y = np.eye(len(labels))[[labels.index(lab) for lab in ds.labels]]
    keras.utils.set_random_seed(0)
    model = build_model("cnn", ds.texts, len(labels), TINY_PARAMS)
    model.fit(tf.constant(ds.texts), y, epochs=2, batch_size=64, verbose=0)
    return model, labels


def test_reloaded_signature_matches_the_keras_model(
    fitted: tuple[keras.Model, list[str]], tmp_path: Path
) -> None:
    model, labels = fitted
    path = export_version(model, tmp_path, "m", _metadata(labels))
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    texts = load_dataset(EXAMPLE_TEST).texts + SAMPLE
    np.testing.assert_allclose(
        predict_probabilities(fn, texts, 64), predict_probabilities(model, texts, 64), atol=1e-6
    )


def test_towers_export_their_average(tmp_path: Path) -> None:
    ds = load_dataset(EXAMPLE_TRAIN)
    labels = sorted(set(ds.labels))
    y = np.eye(len(labels))[[labels.index(lab) for lab in ds.labels]]
    keras.utils.set_random_seed(0)
    model = build_model("cnn", ds.texts, len(labels), replace(TINY_PARAMS, towers=2))
    model.fit(tf.constant(ds.texts), y, epochs=1, batch_size=64, verbose=0)
    towers = [predict_probabilities(m, SAMPLE) for m in model.members]
    assert len(towers) == 2 and not np.allclose(towers[0], towers[1], atol=1e-3)
    path = export_version(model, tmp_path, "m", _metadata(labels))
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    np.testing.assert_allclose(
        predict_probabilities(fn, SAMPLE), (towers[0] + towers[1]) / 2, atol=1e-6
    )


def test_versions_count_up_and_ignore_temp_folders(
    fitted: tuple[keras.Model, list[str]], tmp_path: Path
) -> None:
    model, labels = fitted
    (tmp_path / "m" / ".tmp-leftover").mkdir(parents=True)
    first = export_version(model, tmp_path, "m", _metadata(labels))
    second = export_version(model, tmp_path, "m", _metadata(labels))
    assert (first.name, second.name) == ("1", "2")
    assert artifact.read_metadata(second).version == 2
    shutil.rmtree(first)  # the newest + 1, not the count + 1
    assert export_version(model, tmp_path, "m", _metadata(labels)).name == "3"


def test_failure_mid_export_leaves_nothing(
    fitted: tuple[keras.Model, list[str]], tmp_path: Path
) -> None:
    model, labels = fitted

    def broken_report(out: Path) -> None:
        (out / "metrics.json").write_text("{}")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        export_version(model, tmp_path, "m", _metadata(labels), broken_report)
    assert list((tmp_path / "m").iterdir()) == []


def test_concurrent_publisher_gets_the_next_number(
    fitted: tuple[keras.Model, list[str]], tmp_path: Path
) -> None:
    model, labels = fitted

    def rival_publishes_version_1(out: Path) -> None:
        (tmp_path / "m" / "1").mkdir()  # another trainer won the race for 1

    path = export_version(model, tmp_path, "m", _metadata(labels), rival_publishes_version_1)
    assert path.name == "2"
    assert artifact.read_metadata(path).version == 2


def test_train_adds_versions_to_a_copied_repo(tiny_model_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "models"
    shutil.copytree(tiny_model_repo, repo)
    path = train_tiny_model(repo, seed=1)
    assert path == repo / "example" / "2"
    meta = artifact.read_metadata(path)
    assert meta.params["seed"] == 1 and meta.data.rows == {"train": 602, "val": 70, "test": 154}
    assert artifact.versions(tiny_model_repo / "example") == [1]


def test_same_seed_same_model(tmp_path: Path) -> None:
    a = train(tiny_config(tmp_path, "a", seed=5, epochs=2, patience=5), log=lambda _: None)
    b = train(tiny_config(tmp_path, "b", seed=5, epochs=2, patience=5), log=lambda _: None)
    fa = tf.saved_model.load(str(a)).signatures["serving_default"]
    fb = tf.saved_model.load(str(b)).signatures["serving_default"]
    np.testing.assert_allclose(
        predict_probabilities(fa, SAMPLE), predict_probabilities(fb, SAMPLE), atol=1e-5
    )


def test_the_body_on_inputs_vectorized_once_trains_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fit trains ngram's body on n-gram counts computed once; above PRECOMPUTE_MAX_ROWS the
    string model itself (vectorizing per step): the same seed gives the same model."""
    from training.stages import fit

    cfg = tiny_config(tmp_path, "once", arch="ngram", epochs=2, patience=5)
    once = train(cfg, log=lambda _: None)
    monkeypatch.setattr(fit, "PRECOMPUTE_MAX_ROWS", 0)
    per_step = train(replace(cfg, name="per_step"), log=lambda _: None)
    fa = tf.saved_model.load(str(once)).signatures["serving_default"]
    fb = tf.saved_model.load(str(per_step)).signatures["serving_default"]
    texts = load_dataset(EXAMPLE_TEST).texts + SAMPLE
    np.testing.assert_allclose(
        predict_probabilities(fa, texts), predict_probabilities(fb, texts), atol=1e-5
    )


def test_bad_data_publishes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhi,a\nyo,a\n,b\nx,b\n")
    with pytest.raises(DataError, match=r"bad\.csv:4"):
        train(tiny_config(tmp_path / "models", None, data=bad), log=lambda _: None)
    assert not (tmp_path / "models").exists()


def test_labels_unknown_to_training_are_rejected(tmp_path: Path) -> None:
    test = tmp_path / "test.csv"
    test.write_text("text,label\nwhere is my parcel,order_status\nhello,greeting\n")
    with pytest.raises(DataError, match=r"test\.csv:3: label 'greeting'"):
        train(tiny_config(tmp_path / "models", test_data=test), log=lambda _: None)


def test_imbalanced_data_with_split_and_progress(tmp_path: Path) -> None:
    rows = ["text,label"]
    ds = load_dataset(EXAMPLE_TRAIN)
    keep = {"order_status": 40, "lost_card": 40, "human_agent": 6}
    seen: dict[str, int] = {}
    for text, label in zip(ds.texts, ds.labels, strict=True):
        if seen.get(label, 0) < keep.get(label, 0):
            seen[label] = seen.get(label, 0) + 1
            rows.append(f'"{text}",{label}')
    data = tmp_path / "Small Set (v2).csv"
    data.write_text("\n".join(rows) + "\n")
    lines: list[str] = []
    cfg = tiny_config(tmp_path / "models", None, data=data, epochs=2, verbose=True)
    path = train(cfg, log=lines.append)
    assert path == tmp_path / "models" / "Small-Set-v2" / "1"
    meta = artifact.read_metadata(path)
    assert meta.labels == ["human_agent", "lost_card", "order_status"]
    assert sum(meta.data.rows.values()) == 86 and meta.data.rows["test"] == 9
    assert [line.split("  ")[0] for line in lines if line.startswith("epoch")] == [
        "epoch 1/2",
        "epoch 2/2",
    ]
    assert lines[-1].startswith("done in")


def test_split_refit_trains_on_the_val_rows_for_the_chosen_epochs(tmp_path: Path) -> None:
    lines: list[str] = []
    path = train(tiny_config(tmp_path, "m", refit=True), log=lines.append)
    meta = artifact.read_metadata(path)
    rows, training = meta.data.rows, meta.metrics["training"]
    evaluation = meta.metrics["evaluation"]
    assert evaluation["refit"] == {
        "rows": rows["train"] + rows["val"],
        "epochs": training["best_epoch"],
    }
    assert "is a refit on all" in evaluation["how"] and meta.params["refit"] is True
    assert any(
        line.startswith(f"refit on {rows['train'] + rows['val']} train + val") for line in lines
    )
    # The val figures stay those of the first model, which never saw the val rows.
    assert meta.metrics["val"]["rows"] == rows["val"]


def test_refit_defaults_to_the_architectures_choice() -> None:
    from training.config import TrainConfig
    from training.stages.refit import wants_refit

    assert wants_refit(TrainConfig(arch="encoder")) is True
    assert wants_refit(TrainConfig(arch="ngram")) is False
    assert wants_refit(TrainConfig(arch="encoder", refit=False)) is False
    assert wants_refit(TrainConfig(arch="cnn", refit=True)) is True


def test_no_refit_with_val_data(tmp_path: Path) -> None:
    val = tmp_path / "val.csv"
    ds = load_dataset(EXAMPLE_TEST)
    val.write_text(
        "text,label\n"
        + "".join(f'"{t}",{lab}\n' for t, lab in zip(ds.texts, ds.labels, strict=True))
    )
    path = train(tiny_config(tmp_path, "m", refit=True, val_data=val), log=lambda _: None)
    meta = artifact.read_metadata(path)
    assert "refit" not in meta.metrics["evaluation"]
    assert "never trained on it" in meta.metrics["evaluation"]["how"]


def test_fit_replays_given_learning_rates(tmp_path: Path) -> None:
    from training.stages.fit import FitInput, fit

    ds = load_dataset(EXAMPLE_TRAIN)
    labels = sorted(set(ds.labels))
    y = np.array([labels.index(lab) for lab in ds.labels])
    cfg = tiny_config(tmp_path, "m")
    job = FitInput(texts=ds.texts, y=y, n_labels=len(labels), epochs=2, learning_rates=[1e-3, 2e-4])
    done = fit(cfg, job, lambda _: None)
    np.testing.assert_allclose(done.learning_rates, [1e-3, 2e-4], rtol=1e-6)


def test_mirrored_strategy_trains_and_publishes(tmp_path: Path) -> None:
    # MirroredStrategy over this machine's one CPU device: the same code path as on N GPUs.
    cfg = tiny_config(tmp_path, "m", epochs=1, strategy="mirrored")
    path = train(cfg, log=lambda _: None)
    params = artifact.read_metadata(path).params
    assert params["strategy"] == "mirrored" and params["replicas"] == 1


_TWO_CPU_SCRIPT = """
import sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.model_factory import tiny_config
from training.train import train
print(train(tiny_config(Path(sys.argv[1]), "m2", epochs=2, strategy="mirrored"), log=print))
"""


def test_mirrored_strategy_over_two_logical_cpus_exports_a_working_artifact(
    tmp_path: Path,
) -> None:
    # Two logical CPU devices must be configured before TensorFlow starts: a fresh process.
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _TWO_CPU_SCRIPT, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    path = Path(done.stdout.strip().splitlines()[-1])
    meta = artifact.read_metadata(path)
    assert meta.params["strategy"] == "mirrored" and meta.params["replicas"] == 2

    serve = tf.saved_model.load(str(path)).signatures[artifact.SIGNATURE_KEY]
    probs = serve(**{artifact.INPUT_KEY: tf.constant(["refund please", "hi"])})[
        artifact.OUTPUT_KEY
    ].numpy()
    assert probs.shape == (2, len(meta.labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
