"""The train / evaluate / predict commands: output, last line, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli.train import register
from training import artifact
from training.data import EXAMPLE_TEST

TINY_FLAGS = [
    "--epochs", "2", "--embedding-dim", "8", "--filters", "8", "--kernel-sizes", "2",
    "--dense-units", "8", "--max-tokens", "500", "--sequence-length", "16", "--quiet",
    "--validation", "split", "--arch", "ngram",
]  # fmt: skip


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_train_prints_the_artifact_path_last(
    cli: typer.Typer, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXTCLS_MODEL_DIR", str(tmp_path / "env-models"))
    result = runner.invoke(cli, ["train", *TINY_FLAGS, "--kernel-sizes", "1,2"])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last == str(tmp_path / "env-models" / "example" / "1")
    assert "done in" in result.stdout
    meta = artifact.read_metadata(Path(last))
    assert meta.params["kernel_sizes"] == [1, 2] and meta.params["epochs"] == 2


def test_train_progress_lines(cli: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    flags = [f for f in TINY_FLAGS if f != "--quiet"]
    result = runner.invoke(cli, ["train", "--model-dir", str(tmp_path), *flags])
    assert result.exit_code == 0, result.output
    assert "epoch 1/2" in result.stdout and "epoch 2/2" in result.stdout
    assert "data: 602 train, 70 val, 154 test rows, 14 labels" in result.stdout
    # ngram reads none of the sequence flags: each is reported, not silently dropped.
    assert "warning: --kernel-sizes does not apply to --arch ngram; it is ignored" in result.stdout


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("text,label\nhi,a\nyo,a\n,b\nx,b\n", "bad.csv:4: empty text"),
        ("text,category\nhi,a\n", "bad.csv:1: missing column(s) 'label'"),
        (b"text,label\nhi,a\n\xff\xfe,b\n", "bad.csv:3: bytes"),
        ("text,label\nhi,a\nyo,a,b\n", "bad.csv:3: ragged row"),
        ("", "bad.csv:1: the file is empty"),
        ("text,label\nhi,a\nyo,a\nz,b\n", "bad.csv:4: label 'b' has 1 example(s)"),
    ],
)
def test_bad_data_exits_2_without_traceback_or_artifact(
    cli: typer.Typer, runner: CliRunner, tmp_path: Path, content: str | bytes, where: str
) -> None:
    data = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        data.write_bytes(content)
    else:
        data.write_text(content)
    result = runner.invoke(cli, ["train", "--data", str(data), "--model-dir", str(tmp_path / "m")])
    assert result.exit_code == 2
    assert where in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_a_file_with_several_problems_reports_them_all_at_once(
    cli: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "tickets.csv"
    data.write_text("text,label\nhi,a\nyo,a,extra\nbye,b\nsee you,b\nhey,\nlonely,c\nok,a\n")
    result = runner.invoke(cli, ["train", "--data", str(data), "--model-dir", str(tmp_path / "m")])
    assert result.exit_code == 2
    for where in ("3: ragged row", "6: empty label", "7: label 'c' has 1 example(s)"):
        assert f"tickets.csv:{where}" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_unknown_arch_and_strategy(cli: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    for flag, value in (("--arch", "transformer9"), ("--strategy", "tpu")):
        result = runner.invoke(cli, ["train", flag, value, "--model-dir", str(tmp_path)])
        assert result.exit_code == 2
        assert value in result.stderr


@pytest.mark.parametrize(
    ("value", "named"),
    [("use,bert", "'bert'"), ("e5,e5", "'e5,e5'"), (",", "--encoders")],
)
def test_bad_encoders_exit_2_naming_the_value(
    cli: typer.Typer, runner: CliRunner, tmp_path: Path, value: str, named: str
) -> None:
    args = ["train", "--arch", "encoder", "--encoders", value, "--model-dir", str(tmp_path / "m")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert named in result.stderr and "--encoders" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_mirrored_strategy_refuses_an_architecture_it_cannot_split(
    cli: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    # ngram feeds sparse TF-IDF blocks to its body: it cannot yet train on replicas.
    args = ["train", "--arch", "ngram", "--strategy", "mirrored", "--epochs", "1"]
    result = runner.invoke(cli, [*args, "--model-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--strategy mirrored needs a functional --arch" in result.stderr
    assert not any(tmp_path.rglob("saved_model.pb"))


def test_evaluate_writes_the_report(
    cli: typer.Typer, runner: CliRunner, tiny_model_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    model = tiny_model_repo / "example"
    result = runner.invoke(
        cli, ["evaluate", "--model", str(model), "--data", str(EXAMPLE_TEST), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    metrics = json.loads((out / "metrics.json").read_text())
    stored = artifact.read_metadata(model / "1").metrics["test"]
    # Same model, same file: the same figures as the training report.
    assert metrics["test"]["accuracy"] == pytest.approx(stored["accuracy"])
    assert metrics["model"] == {"name": "example", "version": 1}
    for name in ("confusion_matrix.png", "pr_curves.png", "report.md"):
        assert (out / name).is_file()


def test_evaluate_rejects_unknown_labels(
    cli: typer.Typer, runner: CliRunner, tiny_model_repo: Path, tmp_path: Path
) -> None:
    data = tmp_path / "other.jsonl"
    data.write_text('{"text": "hi", "label": "order_status"}\n{"text": "yo", "label": "greet"}\n')
    args = ["evaluate", "--model", str(tiny_model_repo / "example" / "1"), "--data", str(data)]
    result = runner.invoke(cli, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "other.jsonl:2: label 'greet'" in result.stderr
    assert not (tmp_path / "o").exists()


def test_predict_prints_a_ranking(
    cli: typer.Typer, runner: CliRunner, tiny_model_repo: Path
) -> None:
    args = ["predict", "--model", str(tiny_model_repo / "example"), "--top-k", "2"]
    result = runner.invoke(cli, [*args, "where is my order", "lost card"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("where is my order") and lines[3].startswith("lost card")
    labels = set(artifact.read_metadata(tiny_model_repo / "example" / "1").labels)
    for line in lines[1:3] + lines[4:6]:
        confidence, label = line.split()
        assert 0 <= float(confidence) <= 1 and label in labels


def test_predict_on_a_folder_without_models(
    cli: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(cli, ["predict", "--model", str(tmp_path), "hello"])
    assert result.exit_code == 2
    assert "neither a model version folder" in result.stderr
