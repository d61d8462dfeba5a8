"""``textcls models label/unlabel/traffic/rollback/show``: the serving state with no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli.models import register
from app.plane import serving_state as ss
from tests.app.conftest import add_version_copy

runner = CliRunner()


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(_cli(), ["models", *args])
    return result.exit_code, result.output


@pytest.fixture
def repo(model_repo_copy: Path) -> Path:
    add_version_copy(model_repo_copy, "example", 1, 2)
    add_version_copy(model_repo_copy, "example", 1, 3)
    return model_repo_copy


def test_label_traffic_show_rollback(repo: Path) -> None:
    d = ["--model-dir", str(repo)]
    assert run("label", "example", "stable", "1", *d)[0] == 0
    assert run("label", "example", "canary", "2", *d)[0] == 0
    assert run("label", "example", "shadow", "3", *d)[0] == 0
    code, out = run("traffic", "example", "--canary", "0.1", *d)
    assert code == 0 and "10.0%" in out
    code, out = run("show", "example", "--json", *d)
    shown = json.loads(out)
    assert shown["labels"] == {"canary": 2, "shadow": 3, "stable": 1}
    assert shown["traffic"] == {"canary": 0.1}
    assert ss.read_state(repo / "example").labels == shown["labels"]
    code, out = run("rollback", "example", *d)
    assert code == 0
    state = ss.read_state(repo / "example")
    assert state.labels == {"canary": 2, "stable": 1} and state.canary_share == 0
    assert run("unlabel", "example", "canary", *d)[0] == 0
    assert ss.read_state(repo / "example").labels == {"stable": 1}


def test_model_dir_defaults_to_the_serve_setting(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXTCLS_MODEL_DIR", str(repo))
    assert run("label", "example", "beta", "2")[0] == 0
    assert "beta" in run("show", "example")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("label", "nope", "stable", "1"), "model 'nope' not found; models: example"),
        (("label", "example", "stable", "9"), "no version 9; versions: 1, 2, 3"),
        (("label", "example", "Bad Label", "1"), "invalid label"),
        (("traffic", "example", "--canary", "0.5"), "no version is labelled 'canary'"),
        (("traffic", "example", "--canary", "1.5"), "invalid canary share"),
        (("rollback", "example"), "no version is labelled 'stable'"),
        (("unlabel", "example", "stable"), "label 'stable' is not set"),
    ],
)
def test_refusals_exit_2_and_change_nothing(
    repo: Path, args: tuple[str, ...], message: str
) -> None:
    code, out = run(*args, "--model-dir", str(repo))
    assert code == 2
    assert message in out
    assert not (repo / "example" / "serving.json").exists()


def test_a_version_without_readable_metadata_is_refused(repo: Path) -> None:
    (repo / "example" / "3" / "metadata.json").write_text("{")
    code, out = run("label", "example", "stable", "3", "--model-dir", str(repo))
    assert code == 2 and "cannot be used" in out


def test_a_broken_state_file_is_reported(repo: Path) -> None:
    (repo / "example" / "serving.json").write_text('{"labels": {"stable": -1}}')
    code, out = run("show", "example", "--model-dir", str(repo))
    assert code == 2 and "serving.json" in out and "invalid version" in out


def test_default_prints_chooses_and_names_the_models_on_a_typo(repo: Path) -> None:
    d = ["--model-dir", str(repo)]
    code, out = run("default", *d)
    assert code == 0 and "default model example" in out  # recorded when it was published
    code, out = run("default", "exmaple", *d)
    assert code == 2 and "models: example" in out
    assert json.loads((repo / "serving.json").read_text())["default_model"] == "example"
    (repo / "serving.json").unlink()
    code, out = run("default", *d)
    assert code == 0 and "no default model recorded" in out
    code, out = run("default", "example", "--json", *d)
    assert code == 0 and json.loads(out) == {"default_model": "example"}
