"""Paths and loaders shared by the tests of the deploy files (Dockerfile, compose, k8s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

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
