"""The model artifact contract shared by the trainer (writes) and the service (reads).

Layout: ``<model_dir>/<name>/<version>/`` with a TF SavedModel (``saved_model.pb``,
``variables/``, ``assets/``), ``metadata.json`` and ``report/``. Versions are positive integers;
the newest is the highest. Anything else in ``<model_dir>/<name>/`` (for example the temporary
folders an export writes before its atomic rename) is not a version and is ignored, which is
also what TensorFlow Serving does. This module must not import TensorFlow: the service imports
it on its hot start-up path and the tests import it everywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
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
    """When a prediction is handed to a person: its confidence is under ``threshold``, or the
    top two confidences are closer than ``margin`` (a near tie). An artifact written before
    the margin existed has none (0.0)."""

    threshold: float = Field(ge=0.0, le=1.0)
    margin: float = Field(default=0.0, ge=0.0, le=1.0)
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
    # The fallback rates of the threshold alone (val_/test_fallback_rate include the margin).
    val_fallback_rate_without_margin: float | None = None
    test_fallback_rate_without_margin: float | None = None
    # Set when the margin reaching the target was capped at max_fallback_rate: that margin.
    target_margin: float | None = None


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
    so two trainers racing for the same version cannot overwrite each other. The first model
    published into a repository becomes its default model (``record_default_if_first``).
    """
    target = model_path / str(version)
    if target.exists():
        raise ArtifactError(f"{target} already exists")
    os.rename(temp_dir, target)
    with contextlib.suppress(OSError, ArtifactError):  # the model is published either way
        record_default_if_first(model_path.parent, model_path.name)
    return target


# The repository's own serving state: ``<model_dir>/serving.json``. ---------------------------
# It holds the default model (the one answering requests that name none), so adding a model
# never changes where those requests go, across restarts and on every replica reading the
# folder. Replaced atomically (temporary file, fsync, rename) under an exclusive ``flock`` on
# ``serving.json.lock``, as each model's ``<model_dir>/<name>/serving.json`` is. Every read and
# write of the file is here.

REPOSITORY_STATE_FILE = "serving.json"


def repository_state_path(model_dir: Path) -> Path:
    return model_dir / REPOSITORY_STATE_FILE


def read_default_model(model_dir: Path) -> str | None:
    """The recorded default model, or None (no file, or none recorded); ArtifactError naming
    the file when it is unreadable or invalid."""
    path = repository_state_path(model_dir)
    try:
        return default_model_of(path.read_bytes(), str(path))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArtifactError(f"{path}: unreadable: {exc}") from exc


def default_model_of(data: bytes, where: str) -> str | None:
    """The default model a repository state document records (None: none); ArtifactError
    naming ``where`` (a file or an object store key) when it is invalid."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{where}: unreadable: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ArtifactError(f"{where}: not a schema_version {SCHEMA_VERSION} JSON object")
    default = raw.get("default_model")
    if default is None:
        return None
    if not isinstance(default, str) or not _NAME_RE.match(default):
        raise ArtifactError(f"{where}: invalid default_model {default!r}")
    return default


def repository_state_stamp(model_dir: Path) -> tuple[int, int, int] | None:
    """Changes whenever the file is replaced (inode, size, mtime); None without one."""
    try:
        st = repository_state_path(model_dir).stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` for a read-modify-write (blocks other
    editors of the same state file)."""
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def replace_file_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it over
    ``path``: a reader sees the old content or the new, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-serving-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename survives a crash once the folder is synced
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def repository_locked(model_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the repository state's lock for a read-modify-write (blocks other editors)."""
    return file_lock(model_dir / f"{REPOSITORY_STATE_FILE}.lock")


def repository_state_bytes(default: str) -> bytes:
    """The repository state document recording ``default`` (a file here, or an object)."""
    body = {"schema_version": SCHEMA_VERSION, "default_model": default, "updated_at": utc_now_iso()}
    return (json.dumps(body, indent=2) + "\n").encode("utf-8")


def _write_repository_state(model_dir: Path, default: str) -> None:
    replace_file_atomically(repository_state_path(model_dir), repository_state_bytes(default))


def write_default_model(model_dir: Path, name: str) -> None:
    """Record ``name`` as the default model; ArtifactError unless it is a model of the folder."""
    with repository_locked(model_dir):
        names = model_names(model_dir)
        if name not in names:
            raise ArtifactError(f"model {name!r} not found; models: {', '.join(names) or 'none'}")
        _write_repository_state(model_dir, name)


def record_default_if_first(model_dir: Path, name: str) -> bool:
    """Record ``name`` as the default when none is recorded and it is the folder's only model
    (the first one published or served); True if it wrote."""
    with repository_locked(model_dir):
        if read_default_model(model_dir) is not None or model_names(model_dir) != [name]:
            return False
        _write_repository_state(model_dir, name)
        return True
