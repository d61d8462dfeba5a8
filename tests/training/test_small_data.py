"""Small data and Chinese: kfold training publishes every row, thresholds stay usable, CJK plots."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.model_factory import TINY_PARAMS
from training import artifact, fonts
from training.config import TrainConfig
from training.data import EXAMPLE_DIR, load_dataset
from training.report import ReportSet, write_report
from training.stages.calibrate import calibrate
from training.stages.held_out import HeldOut
from training.stages.kfold import kfold_indices
from training.stages.prepare import choose_validation
from training.train import train

ZH_TRAIN = EXAMPLE_DIR / "support_chat_zh_train.csv"
ZH_TEST = EXAMPLE_DIR / "support_chat_zh_test.csv"


@pytest.fixture(scope="module")
def zh_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    """The bundled Chinese example, default flags but tiny sizes: (version, log, warnings)."""
    lines: list[str] = []
    cfg = TrainConfig(
        data=ZH_TRAIN,
        model_dir=tmp_path_factory.mktemp("zh"),
        arch="ngram",  # what auto picks without the [encoder] extra
        params=replace(TINY_PARAMS, dense_units=32, dropout=0.2),
        epochs=12,
        patience=2,
        folds=3,
        verbose=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        version = train(cfg, log=lines.append)
    return version, lines, [str(w.message) for w in caught]


def test_kfold_publishes_every_row_and_says_how_it_was_evaluated(zh_run: tuple) -> None:
    version, lines, _ = zh_run
    meta = artifact.read_metadata(version)
    assert meta.data.rows == {"train": 360, "val": 0, "test": 0}
    assert meta.params["validation"] == "kfold"
    evaluation = meta.metrics["evaluation"]
    assert evaluation["held_out"] == "cv" and "3-fold cross-validation" in evaluation["how"]
    cv = evaluation["cross_validation"]
    # The refit's epochs come from the out-of-fold curve, never an epoch near a uniform guess.
    chosen = cv["chosen_epochs"]
    assert cv["out_of_fold_loss_by_epoch"][chosen - 1] < 0.75 * np.log(len(meta.labels))
    assert meta.metrics["training"]["epochs_run"] == chosen
    assert meta.fallback.chosen_on == "cv" and meta.fallback.held_out_rows == 360
    assert meta.tokenizer["name"] == "script-aware"
    report = (version / artifact.REPORT_DIR / "report.md").read_text(encoding="utf-8")
    assert "cross-validation (out-of-fold)" in report and "How these figures" in report
    assert any(line.startswith("fold 3/3") for line in lines)


def test_chinese_example_is_learned(zh_run: tuple) -> None:
    version, _, _ = zh_run
    meta = artifact.read_metadata(version)
    assert "订单查询" in meta.labels and len(meta.labels) == 12
    test = load_dataset(ZH_TEST)
    serve = tf.saved_model.load(str(version)).signatures[artifact.SIGNATURE_KEY]
    probs = serve(text=tf.constant(test.texts))[artifact.OUTPUT_KEY].numpy()
    y = np.array([meta.labels.index(lab) for lab in test.labels])
    # 12 labels, chance ~0.08; the test phrasings were never seen in training.
    assert (probs.argmax(axis=1) == y).mean() > 0.6


def test_cjk_report_plots_without_missing_glyphs(zh_run: tuple) -> None:
    version, _, caught = zh_run
    assert not [m for m in caught if "Glyph" in m or "missing from" in m], caught
    report = version / artifact.REPORT_DIR
    assert (report / "confusion_matrix.png").stat().st_size > 0
    text = (report / "report.md").read_text(encoding="utf-8")
    # The default install's CJK font (training/fonts.py) draws the labels: no index table.
    assert fonts.drawable("订单查询")
    assert "## Label index" not in text


def test_labels_no_font_can_draw_become_indices_with_a_table(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    labels = ["refund", "\ue000private"]  # U+E000: private use, in no font
    assert fonts.plot_labels(labels, covered={ord(c) for c in "refund"}) == (["0", "1"], True)
    assert fonts.plot_labels(["退款"], covered={ord("退"), ord("款")}) == (["退款"], False)
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    metrics = {"test": {"rows": 4, "accuracy": 0.75, "macro_f1": 0.73, "per_class": {}}}
    metrics["test"]["confusion_matrix"] = [[2, 0], [1, 1]]
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        write_report(tmp_path, "t", metrics, ReportSet(labels, y, probs))
    assert not [w for w in caught if "Glyph" in str(w.message)]
    assert "Glyph" not in caplog.text
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| 1 | \ue000private |" in text


def test_auto_validation_picks_kfold_for_small_files_only() -> None:
    assert choose_validation(TrainConfig(), 770) == "kfold"
    assert choose_validation(TrainConfig(), 10_003) == "split"
    assert choose_validation(TrainConfig(val_data=Path("v.csv")), 770) == "split"
    assert choose_validation(TrainConfig(validation="split"), 770) == "split"


def test_kfold_holds_every_row_out_once_stratified() -> None:
    y = np.array([0] * 10 + [1] * 10 + [2] * 2)
    folds = kfold_indices(y, 5, seed=0)
    flat = np.concatenate(folds)
    assert sorted(flat.tolist()) == list(range(len(y)))
    assert all(np.bincount(y[f], minlength=3)[:2].tolist() == [2, 2] for f in folds)


def test_degenerate_threshold_from_one_example_per_label_is_reported() -> None:
    # A 10%-split of 10 rows per label: one held-out row per label, all confidently right.
    n = 14
    probs = np.full((n, n), 1e-9 / (n - 1))
    probs[np.arange(n), np.arange(n)] = 1 - 1e-9
    cal = calibrate(TrainConfig(), HeldOut("val", probs, np.arange(n)), None)
    assert cal.temperature == 1.0
    assert any("only 14 held-out predictions" in w for w in cal.warnings)


def test_a_threshold_sending_most_messages_to_a_person_is_capped_and_reported() -> None:
    rng = np.random.default_rng(0)
    n, k = 1000, 20
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5  # ~60% right, confidence barely informative
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cal = calibrate(TrainConfig(), HeldOut("cv", probs, y), None)
    fb = cal.fallback
    assert fb.target_threshold is not None and fb.target_threshold > fb.threshold
    assert fb.val_fallback_rate == pytest.approx(0.4, abs=0.01)
    assert any("hands" in w and "to a person" in w for w in cal.warnings)


def test_labels_with_few_examples_are_named(tmp_path: Path) -> None:
    rows = ["text,label"] + [f"order {i} status,order_status" for i in range(12)]
    rows += [f"refund {i} please,refund" for i in range(12)] + ["agent now,human_agent"] * 1
    rows += ["person please,human_agent", "let me talk to someone,human_agent"]
    data = tmp_path / "few.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    lines: list[str] = []
    cfg = TrainConfig(
        data=data,
        model_dir=tmp_path / "m",
        arch="ngram",
        params=TINY_PARAMS,
        epochs=2,
        folds=2,
        verbose=False,
    )
    train(cfg, log=lines.append)
    warning = next(line for line in lines if "fewer than 5 training examples" in line)
    assert "human_agent (3)" in warning and "refund" not in warning


def test_the_near_tie_margin_is_chosen_and_recorded(zh_run: tuple) -> None:
    version, lines, _ = zh_run
    fallback = artifact.read_metadata(version).fallback
    assert 0.0 <= fallback.margin <= 1.0
    assert fallback.val_fallback_rate_without_margin is not None
    assert fallback.val_fallback_rate is not None
    assert fallback.val_fallback_rate >= fallback.val_fallback_rate_without_margin
    report = (version / artifact.REPORT_DIR / "report.md").read_text(encoding="utf-8")
    assert f"near-tie margin **{fallback.margin:.4f}**" in report


def test_the_trainer_warns_when_a_label_is_drawn_as_an_index(tmp_path: Path) -> None:
    rows = ["text,label"] + [f"order {i} status,order_status" for i in range(12)]
    rows += [f"refund {i} please,\ue000refund" for i in range(12)]  # U+E000: in no font
    data = tmp_path / "pua.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    lines: list[str] = []
    cfg = TrainConfig(
        data=data,
        model_dir=tmp_path / "m",
        arch="ngram",
        params=TINY_PARAMS,
        epochs=2,
        validation="split",
        val_fraction=0.25,
        verbose=False,
    )
    train(cfg, log=lines.append)
    (warning,) = [line for line in lines if "label indices" in line]
    assert warning.startswith("warning: no installed font draws") and "refund" in warning
    assert not [line for line in lines if "order_status" in line and "label indices" in line]
