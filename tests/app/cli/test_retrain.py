"""``textcls retrain``: a planted error fixed by feedback passes the gate; shuffled feedback is
refused with exit 3 and nothing published or labelled."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from app.cli.models import register as register_models
from app.cli.retrain import register
from app.plane import serving_state as ss
from app.plane.store import published as pub
from app.plane.store.marker import publish_folder, read_marker
from app.plane.store.objects import open_store
from app.predlog.engine import create_db_engine
from app.predlog.feedback import record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.migrate import upgrade
from app.predlog.records import to_row
from tests.app.predlog.factories import make_record
from tests.model_factory import tiny_config
from tests.s3_server import S3Server
from training.artifact import read_metadata, versions
from training.data import EXAMPLE_TEST, EXAMPLE_TRAIN
from training.train import train

runner = CliRunner()
PLANTED_FROM, PLANTED_TO = "lost_card", "damaged_item"


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    register_models(app)
    return app


def _rows(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """A training file where 36 of 48 lost_card rows say damaged_item, and a model on it."""
    root = tmp_path_factory.mktemp("retrain")
    rows = _rows(EXAMPLE_TRAIN)
    flipped = [i for i, (_, lab) in enumerate(rows) if lab == PLANTED_FROM][:36]
    for i in flipped:
        rows[i] = (rows[i][0], PLANTED_TO)
    data = _write(root / "planted.csv", rows)
    models = root / "models"
    train(tiny_config(models, "example", data=data, test_data=EXAMPLE_TEST), log=lambda _m: None)
    return data, models, [rows[i][0] for i in flipped]


def _log_feedback(
    engine: Engine, pairs: list[tuple[str, str, str]], log_text: str = "full", prefix: str = "r"
) -> None:
    """(text, predicted, corrected) as answered predictions, each with its correction."""
    records = [make_record(0, f"{prefix}-{i}", t, p) for i, (t, p, _) in enumerate(pairs)]
    with engine.begin() as conn:
        insert_rows(conn, [to_row(r, log_text) for r in records])  # type: ignore[arg-type]
    for i, (_, _, corrected) in enumerate(pairs):
        record_feedback(engine, f"{prefix}-{i}", 0, label=corrected, labels_for=lambda m, v: None)


def _db(tmp_path: Path) -> tuple[str, Engine]:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    return url, engine


def _copy_models(models: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "models"
    shutil.copytree(models, dest)
    return dest


def test_feedback_fixing_a_planted_error_passes_and_is_labelled_candidate(
    planted: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    data, models, flipped = planted
    models = _copy_models(models, tmp_path)
    url, engine = _db(tmp_path)
    _log_feedback(engine, [(t, PLANTED_TO, PLANTED_FROM) for t in flipped])
    # Two texts logged only as hashes: reported, not used.
    _log_feedback(engine, [("hashed text", "x", PLANTED_FROM)], log_text="hash", prefix="h")
    engine.dispose()
    out = tmp_path / "report"
    args = ["retrain", "--name", "example", "--data", str(data), "--model-dir", str(models)]
    result = runner.invoke(_cli(), [*args, "--database-url", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cannot be used" in result.output and "hashes" in result.output
    report = json.loads((out / "comparison.json").read_text())
    held = report["held_out"]
    assert report["passed"] and report["corrections"]["relabelled"] == 36
    assert held["candidate"]["accuracy"] > held["stable"]["accuracy"]
    assert held["per_label_f1"][PLANTED_FROM]["change"] > 0
    assert held["rows"] == 154 and report["held_out_source"] == str(EXAMPLE_TEST)
    assert versions(models / "example") == [1, 2]
    state = ss.read_state(models / "example")
    assert state.labels == {"stable": 1, "candidate": 2}
    meta = read_metadata(models / "example" / "2")
    assert (
        meta.params["embedding_dim"]
        == read_metadata(models / "example" / "1").params["embedding_dim"]
    )
    assert (models / "example" / "2" / "report" / "retrain" / "comparison.md").is_file()
    assert not [p for p in (models / "example").iterdir() if p.name.startswith(".tmp-")]


def test_retrain_on_s3_publishes_the_candidate_and_labels_in_the_store(
    planted: tuple[Path, Path, list[str]], tmp_path: Path, s3_env: S3Server
) -> None:
    data, models, flipped = planted
    store_url = f"s3://{s3_env.new_bucket()}/models"
    store = open_store(store_url)
    publish_folder(store, models / "example" / "1", "example/1")
    url, engine = _db(tmp_path)
    _log_feedback(engine, [(t, PLANTED_TO, PLANTED_FROM) for t in flipped])
    engine.dispose()
    args = ["retrain", "--name", "example", "--data", str(data), "--model-dir", store_url]
    result = runner.invoke(_cli(), [*args, "--database-url", url, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "published version 2, labelled candidate" in result.output
    assert pub.published(store) == {"example": [1, 2]}
    assert pub.read_state(store, "example").labels == {"stable": 1, "candidate": 2}
    assert "report/retrain/comparison.md" in read_marker(store, "example/2")


def test_shuffled_feedback_is_refused_with_exit_3(
    planted: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    data, models, _ = planted
    models = _copy_models(models, tmp_path)
    url, engine = _db(tmp_path)
    rows = _rows(data)
    rng = random.Random(1)
    picked = rng.sample(rows, 400)
    labels = [lab for _, lab in picked]
    rng.shuffle(labels)
    _log_feedback(engine, [(t, lab, new) for (t, lab), new in zip(picked, labels, strict=True)])
    engine.dispose()
    args = ["retrain", "--name", "example", "--data", str(data), "--model-dir", str(models)]
    result = runner.invoke(_cli(), [*args, "--database-url", url, "--out", str(tmp_path / "r")])
    assert result.exit_code == 3, result.output
    assert "refused" in result.output and "accuracy" in result.output
    assert versions(models / "example") == [1]
    assert not (models / "example" / "serving.json").exists()
    assert not [p for p in (models / "example").iterdir() if p.name.startswith(".tmp-")]


def test_a_changed_original_without_test_file_is_a_clear_error(tmp_path: Path) -> None:
    models = tmp_path / "models"
    data = _write(tmp_path / "d.csv", _rows(EXAMPLE_TRAIN))
    train(tiny_config(models, "example", data=data, epochs=1), log=lambda _m: None)
    url, engine = _db(tmp_path)
    engine.dispose()
    other = _write(tmp_path / "other.csv", _rows(EXAMPLE_TRAIN)[:-5])
    args = ["retrain", "--name", "example", "--data", str(other), "--model-dir", str(models)]
    result = runner.invoke(_cli(), [*args, "--database-url", url])
    assert result.exit_code == 2
    assert "not the file version 1 trained on" in result.output


def test_feedback_naming_a_new_label_teaches_the_candidate_it(tmp_path: Path) -> None:
    """A model trained without lost_card; the team named a discovered intent lost_card: the
    candidate knows it, the gate compares on the labels both know, the new one is reported."""
    rows = _rows(EXAMPLE_TRAIN)
    new = [t for t, lab in rows if lab == PLANTED_FROM]
    data = _write(tmp_path / "without.csv", [r for r in rows if r[1] != PLANTED_FROM])
    test = _write(tmp_path / "test.csv", [r for r in _rows(EXAMPLE_TEST) if r[1] != PLANTED_FROM])
    models = tmp_path / "models"
    train(tiny_config(models, "example", data=data, test_data=test), log=lambda _m: None)
    url, engine = _db(tmp_path)
    _log_feedback(engine, [(t, PLANTED_TO, PLANTED_FROM) for t in new])
    _log_feedback(engine, [(f"odd text {i}", "x", "too_rare") for i in range(2)], prefix="o")
    engine.dispose()
    out = tmp_path / "report"
    args = ["retrain", "--name", "example", "--data", str(data), "--model-dir", str(models)]
    result = runner.invoke(_cli(), [*args, "--database-url", url, "--out", str(out)])
    report = json.loads((out / "comparison.json").read_text())
    learned = report["new_labels"]["labels"][PLANTED_FROM]
    assert learned["trained"] + learned["held_out"] == len(set(new))
    assert learned["held_out"] >= 1 and learned["recall"] >= 0.5, learned
    assert report["new_labels"]["too_few"] == {"too_rare": 2}
    assert PLANTED_FROM not in report["held_out"]["per_label_f1"]  # known labels only
    assert report["passed"], (result.output, report["reasons"])
    assert PLANTED_FROM in read_metadata(models / "example" / "2").labels
