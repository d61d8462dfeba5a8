"""The model artifact contract shared by the trainer (writes) and the service (reads).

Layout: ``<model_dir>/<name>/<version>/`` with a TF SavedModel (``saved_model.pb``,
``variables/``, ``assets/``), ``metadata.json`` and ``report/``. Versions are positive integers;
the newest is the highest. Anything else in ``<model_dir>/<name>/`` (for example the temporary
folders an export writes before its atomic rename) is not a version and is ignored, which is
also what TensorFlow Serving does. This module must not import TensorFlow: the service imports
it on its hot start-up path and the tests import it everywhere.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from training.reference import Reference

SIGNATURE_KEY = "serving_default"
INPUT_KEY = "text"
OUTPUT_KEY = "probabilities"
METADATA_FILE = "metadata.json"
SAVED_MODEL_FILE = "saved_model.pb"
REPORT_DIR = "report"
TEMP_PREFIX = ".tmp-"
SCHEMA_VERSION = 1

# Python modules whose import registers the custom TensorFlow ops a SavedModel may use, with the
# pip package that provides each. Only these are imported for an artifact: metadata.json names
# them, and a model folder must not be able to make the service import arbitrary code.
OP_LIBRARIES = {"tensorflow_text": "tensorflow-text"}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ArtifactError(Exception):
    """An artifact folder is missing, incomplete or has invalid metadata."""


class DataInfo(BaseModel):
    """Where the training data came from, so a model can be traced back to its file."""

    file: str
    sha256: str
    rows: dict[str, int] = Field(description="row counts per split: train, val, test")


class FallbackInfo(BaseModel):
    """The confidence threshold below which a prediction is handed to a person."""

    threshold: float = Field(ge=0.0, le=1.0)
    target_precision: float = Field(ge=0.0, le=1.0)
    val_precision: float | None = None
    val_fallback_rate: float | None = None
    test_precision: float | None = None
    test_fallback_rate: float | None = None
    # Where val_* come from ("val": a split, "cv": out-of-fold predictions) and how many.
    chosen_on: str | None = None
    held_out_rows: int | None = None
    # Set when the target precision needed a threshold falling back on more than
    # max_fallback_rate of messages: that threshold (the served one is capped).
    target_threshold: float | None = None
    max_fallback_rate: float | None = None


class Metadata(BaseModel):
    """``metadata.json``: everything a reader needs to use a version without TensorFlow."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    name: str
    version: int = Field(ge=1)
    labels: list[str] = Field(min_length=2)
    created_at: str
    tensorflow_version: str
    arch: str = "cnn"
    tokenizer: dict[str, Any] = Field(
        default_factory=dict, description="how the exported graph splits text (training.tokenize)"
    )
    data: DataInfo
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    fallback: FallbackInfo
    signature: dict[str, str] = Field(
        default_factory=lambda: {"key": SIGNATURE_KEY, "input": INPUT_KEY, "output": OUTPUT_KEY}
    )
    op_libraries: list[str] = Field(
        default_factory=list,
        description="modules to import before tf.saved_model.load (they register custom ops)",
    )
    reference: Reference | None = Field(
        default=None, description="held-out statistics live traffic is compared with (drift)"
    )


def import_op_libraries(meta: Metadata) -> None:
    """Import the op libraries ``meta`` needs; ArtifactError naming the package if one is missing.

    Call before ``tf.saved_model.load``: a graph with an op that is not registered fails to load.
    """
    for module in meta.op_libraries:
        if module not in OP_LIBRARIES:
            raise ArtifactError(
                f"{meta.name} v{meta.version}: unknown op library {module!r} "
                f"(known: {', '.join(sorted(OP_LIBRARIES))})"
            )
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ArtifactError(
                f"{meta.name} v{meta.version} needs the {module} ops: "
                f"pip install {OP_LIBRARIES[module]} ({exc})"
            ) from exc


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a usable model name (a folder name and a URL path segment)."""
    if not _NAME_RE.match(name):
        raise ArtifactError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def model_names(model_dir: Path) -> list[str]:
    """Names of the model folders under ``model_dir`` (those with at least one version)."""
    if not model_dir.is_dir():
        return []
    return sorted(
        p.name for p in model_dir.iterdir() if p.is_dir() and _NAME_RE.match(p.name) and versions(p)
    )


def versions(model_path: Path) -> list[int]:
    """Version numbers present in ``models/<name>``, ascending (complete or not)."""
    if not model_path.is_dir():
        return []
    found = []
    for p in model_path.iterdir():
        if p.is_dir() and p.name.isdigit() and int(p.name) > 0:
            found.append(int(p.name))
    return sorted(found)


def next_version(model_path: Path) -> int:
    existing = versions(model_path)
    return (existing[-1] + 1) if existing else 1


def version_path(model_dir: Path, name: str, version: int) -> Path:
    return model_dir / name / str(version)


def read_metadata(version_dir: Path) -> Metadata:
    """Read and validate ``metadata.json``; raise ArtifactError naming the folder on failure."""
    path = version_dir / METADATA_FILE
    if not (version_dir / SAVED_MODEL_FILE).is_file():
        raise ArtifactError(f"{version_dir}: no {SAVED_MODEL_FILE} (incomplete or not a model)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"{version_dir}: no {METADATA_FILE}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable metadata: {exc}") from exc
    try:
        meta = Metadata.model_validate(raw)
    except ValueError as exc:
        raise ArtifactError(f"{path}: invalid metadata: {exc}") from exc
    if str(meta.version) != version_dir.name:
        raise ArtifactError(
            f"{path}: metadata says version {meta.version} but the folder is {version_dir.name}"
        )
    return meta


def write_metadata(version_dir: Path, meta: Metadata) -> None:
    text = json.dumps(meta.model_dump(mode="json"), indent=2, ensure_ascii=False)
    (version_dir / METADATA_FILE).write_text(text + "\n", encoding="utf-8")


def publish(temp_dir: Path, model_path: Path, version: int) -> Path:
    """Atomically move a fully written ``temp_dir`` into place as ``model_path/<version>``.

    ``os.rename`` of a directory is atomic on one filesystem and fails if the target exists,
    so two trainers racing for the same version cannot overwrite each other.
    """
    target = model_path / str(version)
    if target.exists():
        raise ArtifactError(f"{target} already exists")
    os.rename(temp_dir, target)
    return target
