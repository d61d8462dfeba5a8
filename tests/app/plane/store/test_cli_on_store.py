"""Every command that takes a model folder, on an ``s3://`` repository (moto's server): train
publishes the next version (marker last), predict and evaluate read a verified copy, and the
``models`` edits go through the conditional writes the replicas' admin routes use."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli import models, train
from app.plane import serving_state as ss
from app.plane.store import published as pub
from app.plane.store.marker import MARKER_FILE, describe, publish_folder, read_marker
from app.plane.store.objects import ObjectStore, open_store
from tests.app.cli.test_train import TINY_FLAGS
from tests.s3_server import S3Server
from training.artifact import METADATA_FILE
from training.data import EXAMPLE_TEST

runner = CliRunner()


def _cli() -> typer.Typer:
    app = typer.Typer()
    train.register(app)
    models.register(app)
    return app


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(_cli(), list(args))
    return result.exit_code, result.output


@pytest.fixture
def repo(tiny_model_repo: Path, s3_env: S3Server) -> tuple[str, ObjectStore]:
    """An S3 repository holding version 1 of ``example``."""
    url = f"s3://{s3_env.new_bucket()}/models"
    store = open_store(url)
    publish_folder(store, tiny_model_repo / "example" / "1", "example/1")
    return url, store


def test_train_publishes_the_next_version_and_predict_evaluate_read_it(
    repo: tuple[str, ObjectStore], tmp_path: Path
) -> None:
    url, store = repo
    code, out = run("train", "--model-dir", url, *TINY_FLAGS)
    assert code == 0, out
    assert out.strip().splitlines()[-1] == f"{url}/example/2"  # the URL kept, not s3:/...
    manifest = read_marker(store, "example/2")
    assert json.loads(store.read(f"example/2/{METADATA_FILE}").data)["version"] == 2
    assert "saved_model.pb" in manifest and MARKER_FILE not in manifest
    assert pub.published(store) == {"example": [1, 2]}
    newest = pub.newest_metadata(store, "example")  # what `textcls intents` reads
    assert newest is not None and newest.version == 2
    assert pub.newest_metadata(store, "nothing") is None

    code, out = run("predict", "--model", f"{url}/example", "where is my card")
    assert code == 0, out
    assert out.splitlines()[0].startswith("where is my card")
    report = tmp_path / "eval"
    code, out = run(
        "evaluate", "--model", f"{url}/example/1", "--data", str(EXAMPLE_TEST), "--out", str(report)
    )
    assert code == 0, out
    assert json.loads((report / "metrics.json").read_text())["test"]["accuracy"] > 0
    code, out = run("predict", "--model", f"{url}/example/7", "hi")
    assert code == 2 and "no complete version 7" in out
    code, out = run("predict", "--model", f"{url}/nothing", "hi")
    assert code == 2 and "model 'nothing' not found" in out


def test_models_edits_on_s3_use_conditional_writes(
    repo: tuple[str, ObjectStore], tiny_model_repo: Path, tmp_path: Path
) -> None:
    url, store = repo
    v2 = tmp_path / "v2"
    shutil.copytree(tiny_model_repo / "example" / "1", v2)
    assert pub.publish_next(store, v2) == ("example", 2)
    d = ["--model-dir", url]
    assert run("models", "label", "example", "stable", "1", *d)[0] == 0
    assert run("models", "label", "example", "canary", "2", *d)[0] == 0
    code, out = run("models", "traffic", "example", "--canary", "0.25", *d)
    assert code == 0 and "25.0%" in out
    code, out = run("models", "show", "example", "--json", *d)
    assert json.loads(out)["labels"] == {"canary": 2, "stable": 1}
    assert pub.read_state(store, "example").canary_share == 0.25
    code, out = run("models", "label", "example", "beta", "5", *d)
    assert code == 2 and "no complete version 5" in out
    assert run("models", "rollback", "example", *d)[0] == 0
    assert pub.read_state(store, "example").canary_share == 0
    code, out = run("models", "default", "example", *d)
    assert code == 0 and "default model example" in out
    assert pub.read_default(store) == "example"
    code, out = run("models", "default", "other", *d)
    assert code == 2 and "model 'other' not found" in out

    # Two editors at the same moment (two CLI runs, two stores): both labels land.
    start = threading.Barrier(2)

    def label(name: str, version: int) -> None:
        start.wait()
        models.edit(open_store(url), "example", lambda s: ss.with_label(s, name, version))

    threads = [threading.Thread(target=label, args=a) for a in (("x", 1), ("y", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pub.read_state(store, "example").labels == {"stable": 1, "canary": 2, "x": 1, "y": 2}


def test_two_publishers_at_once_get_two_numbers(
    repo: tuple[str, ObjectStore], tiny_model_repo: Path, tmp_path: Path
) -> None:
    url, _ = repo
    folders = []
    for i in (0, 1):
        folders.append(tmp_path / f"c{i}" / "1")
        shutil.copytree(tiny_model_repo / "example" / "1", folders[-1])
    start = threading.Barrier(2)
    got: list[tuple[str, int]] = []

    def publish(folder: Path) -> None:
        start.wait()
        got.append(pub.publish_next(open_store(url), folder))

    threads = [threading.Thread(target=publish, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [("example", 2), ("example", 3)]
    store = open_store(url)
    for _, version in got:
        assert read_marker(store, f"example/{version}").keys() == describe(folders[0]).keys()
