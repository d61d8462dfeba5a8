"""A setting is declared once: a dummy one added in a fixture shows up as a `textcls train`
option with its help, is validated by its declared range, lands in metadata.json's params and
is read back by the config a retrain trains with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli.train import register
from training.config import TrainConfig
from training.params import ModelParams
from training.retrain import config_like
from training.settings import (
    SettingError,
    config_from_params,
    declared,
    recorded_params,
    setting,
    validate,
)

TINY_FLAGS = [
    "--arch", "ngram", "--epochs", "1", "--dense-units", "8", "--max-tokens", "300",
    "--validation", "split", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def with_dummy() -> type[TrainConfig]:
    """TrainConfig plus one setting, declared the one way a setting is."""
    return dataclasses.make_dataclass(
        "WithDummy",
        [("dummy_knob", int, setting(3, min=1, max=5, help="A dummy knob for the test."))],
        bases=(TrainConfig,),
        kw_only=True,
    )


@pytest.fixture(scope="module")
def cli(with_dummy: type[TrainConfig]) -> typer.Typer:
    app = typer.Typer()
    register(app, settings=with_dummy)
    return app


def test_the_setting_is_an_option_with_its_help(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--dummy-knob" in result.output
    assert "A dummy knob for the test." in result.output


def test_the_setting_is_validated_by_its_declaration(
    cli: typer.Typer, with_dummy: type[TrainConfig], tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["train", "--dummy-knob", "9", "--model-dir", str(tmp_path), *TINY_FLAGS]
    )
    assert result.exit_code == 2
    assert "--dummy-knob" in result.output
    with pytest.raises(SettingError, match="--dummy-knob 0 is below its minimum 1"):
        validate(with_dummy(dummy_knob=0))  # type: ignore[call-arg]


def test_the_setting_is_recorded_and_read_back_for_a_retrain(
    cli: typer.Typer, with_dummy: type[TrainConfig], tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["train", "--dummy-knob", "4", "--model-dir", str(tmp_path), *TINY_FLAGS]
    )
    assert result.exit_code == 0, result.output
    version = Path(result.stdout.strip().splitlines()[-1])
    meta = json.loads((version / "metadata.json").read_text())
    assert meta["params"]["dummy_knob"] == 4
    from training.artifact import read_metadata

    again = config_like(read_metadata(version), with_dummy)
    assert again.dummy_knob == 4  # type: ignore[attr-defined]
    assert again.params.dense_units == 8 and again.arch == "ngram"


def test_every_setting_has_help_and_a_json_ready_default() -> None:
    for d in declared(TrainConfig):
        assert d.spec.help.strip(), d.name
    assert json.loads(json.dumps(recorded_params(TrainConfig())))


def test_retrain_reuses_recorded_settings_but_not_the_machines() -> None:
    params = {**recorded_params(TrainConfig(seed=7, strategy="mirrored")), "kernel_sizes": [2]}
    cfg = config_from_params(TrainConfig, params, data=Path("x.csv"))
    assert cfg.seed == 7 and cfg.strategy == "default"  # a retrain runs on one machine
    assert cfg.params.kernel_sizes == (2,) and cfg.data == Path("x.csv")
    assert isinstance(cfg.params, ModelParams)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"monitor": "val_f1"}, "unknown --monitor 'val_f1'"),
        ({"arch": "transformer9"}, "unknown --arch 'transformer9'"),
        ({"validation": "kfold", "val_data": Path("v.csv")}, "kfold takes no --val-data"),
        ({"epochs": 0}, "--epochs 0 is below its minimum 1"),
    ],
)
def test_validation_names_the_flag(change: dict[str, object], message: str) -> None:
    with pytest.raises(SettingError, match=message):
        validate(TrainConfig(**change))  # type: ignore[arg-type]


def test_folds_default_to_the_architectures_and_a_given_count_wins() -> None:
    from training.stages.prepare import fold_count

    assert fold_count(TrainConfig(data=Path("x.csv"), arch="encoder")) == 3
    assert fold_count(TrainConfig(data=Path("x.csv"), arch="ngram")) == 5
    assert fold_count(TrainConfig(data=Path("x.csv"), arch="auto"), "encoder") == 3
    assert fold_count(TrainConfig(data=Path("x.csv"), arch="encoder", folds=4)) == 4
