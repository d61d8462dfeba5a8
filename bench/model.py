"""The benchmark's model: BANKING77 with the default architecture, trained once if absent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.servers import REPO_ROOT
from bench.texts import LABEL_COLUMN
from training.artifact import version_path, versions

MODEL_NAME = "banking77"
DEFAULT_MODEL_DIR = REPO_ROOT / "bench" / ".models"


class ModelError(Exception):
    """The benchmark model is absent and could not be trained."""


def ensure_model(
    model_dir: Path, data: Path, log: Callable[[str], None] = print, retrain: bool = False
) -> Path:
    """The newest ``banking77`` version under ``model_dir``; train it with ``textcls train`` first
    if there is none or ``retrain`` (a subprocess, so the harness's own process stays small)."""
    found = versions(model_dir / MODEL_NAME)
    if found and not retrain:
        return version_path(model_dir, MODEL_NAME, found[-1])
    argv = [
        sys.executable, "-m", "app.cli", "train",
        "--data", str(data / "train.csv"),
        "--test-data", str(data / "test.csv"),
        "--label-column", LABEL_COLUMN,
        "--name", MODEL_NAME,
        "--model-dir", str(model_dir),
        "--quiet",
    ]  # fmt: skip
    why = "retraining" if found else f"no {MODEL_NAME} model in {model_dir}: training one"
    log(f"{why} (a few minutes): {' '.join(argv)}")
    done = subprocess.run(argv, cwd=REPO_ROOT, check=False)
    before, found = found, versions(model_dir / MODEL_NAME)
    if done.returncode != 0 or found == before:
        raise ModelError(f"textcls train exited with {done.returncode} and published no model")
    return version_path(model_dir, MODEL_NAME, found[-1])
