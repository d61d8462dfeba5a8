"""Paths and loaders shared by the tests of the deploy files (Dockerfile, compose, k8s)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from app.config import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in ``path``."""
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def env_var_names() -> set[str]:
    """The environment variable of every Settings field: ``TEXTCLS_<FIELD>``."""
    return {f"TEXTCLS_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="session")
def settings_env_vars() -> set[str]:
    return env_var_names()


@functools.cache
def _textcls_cli() -> typer.Typer:
    from app import cli

    cli._register()  # what main() does before running; once, as each call adds the commands
    return cli.cli


def textcls_group() -> Any:
    """The ``textcls`` command group (click) as the console script builds it."""
    return typer.main.get_command(_textcls_cli())


def textcls_help(*args: str) -> str:
    """``textcls ARGS --help``, in-process (the CLI is the image's entrypoint)."""
    result = CliRunner().invoke(_textcls_cli(), [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output
