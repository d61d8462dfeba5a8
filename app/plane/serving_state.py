"""A model's serving state (version labels, canary share) in ``models/<name>/serving.json``.

The state lives beside the versions, so every replica reading the same model folder agrees
within one poll interval and a restart keeps it. The file is replaced atomically (write a
temporary file in the same folder, fsync, rename), so a reader sees the old state or the new,
never half of one. Read-modify-write callers (the CLI, the admin routes of every replica) hold
an exclusive ``flock`` on ``serving.json.lock`` so two edits cannot lose one another.

No TensorFlow and no HTTP here: the CLI edits this with no server running.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.artifact import (
    ArtifactError,
    file_lock,
    model_names,
    read_metadata,
    replace_file_atomically,
    version_path,
    versions,
)

STATE_FILE = "serving.json"
SCHEMA_VERSION = 1
LABEL_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
STABLE, CANARY, SHADOW, CANDIDATE = "stable", "canary", "shadow", "candidate"


class StateError(Exception):
    """An invalid label, share or state file; the message says which and why."""


class StateConflict(StateError):
    """The edit does not fit the current state (a canary share with no canary, say)."""


class UnknownModel(StateError):
    """No model of that name is in the model folder."""


class UnknownVersion(StateError):
    """The model has no such version folder, or no such label to remove (404 on the API)."""


class UnusableVersion(StateError):
    """The version folder exists but cannot be loaded."""


@dataclass(frozen=True, slots=True)
class ServingState:
    """Label -> version, and the share of a model's traffic that goes to ``canary``.

    ``stable``: the version answering requests that name no version (default: the newest).
    ``canary``: answers ``canary_share`` of them. ``shadow``: classifies every request off
    the request path, never answered. Other labels are names clients may ask for.
    """

    labels: dict[str, int] = field(default_factory=dict)
    canary_share: float = 0.0
    updated_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "labels": dict(sorted(self.labels.items())),
            "traffic": {"canary": self.canary_share},
            "updated_at": self.updated_at,
        }

    def traffic(self) -> dict[str, Any]:
        """The split as /models shows it: which version gets which share."""
        return {
            "canary": self.canary_share if CANARY in self.labels else 0.0,
            "stable_version": self.labels.get(STABLE),
            "canary_version": self.labels.get(CANARY),
            "shadow_version": self.labels.get(SHADOW),
        }


EMPTY = ServingState()


def check_label(label: str) -> str:
    if not isinstance(label, str) or not LABEL_RE.fullmatch(label):
        raise StateError(
            f"invalid label {label!r}: 1-32 characters of a-z 0-9 _ -, starting with a letter"
        )
    return label


def check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StateError(f"invalid version {version!r}: a positive integer")
    return version


def check_share(share: object) -> float:
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise StateError(f"invalid canary share {share!r}: a number from 0 to 1")
    return float(share)


def from_json(raw: object) -> ServingState:
    """Validate a decoded ``serving.json``; StateError naming the problem."""
    if not isinstance(raw, dict):
        raise StateError("serving state must be a JSON object")
    if raw.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise StateError(f"unknown schema_version {raw.get('schema_version')!r}")
    labels_raw = raw.get("labels", {})
    traffic = raw.get("traffic", {})
    if not isinstance(labels_raw, dict) or not isinstance(traffic, dict):
        raise StateError("'labels' and 'traffic' must be JSON objects")
    labels = {check_label(k): check_version(v) for k, v in labels_raw.items()}
    updated = raw.get("updated_at")
    share = check_share(traffic.get("canary", 0.0))
    return ServingState(labels, share, updated if isinstance(updated, str) else None)


def state_path(model_path: Path) -> Path:
    return model_path / STATE_FILE


def read_state(model_path: Path) -> ServingState:
    """The state of the model in ``model_path``; no file means no labels and no canary."""
    path = state_path(model_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return EMPTY
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: unreadable: {exc}") from exc
    try:
        return from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise StateError(f"{path}: not JSON: {exc}") from exc
    except StateError as exc:
        raise StateError(f"{path}: {exc}") from exc


def stamp(model_path: Path) -> tuple[int, int, int] | None:
    """Changes whenever the state file is replaced (inode, size, mtime); None without one."""
    try:
        st = state_path(model_path).stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def write_state(model_path: Path, state: ServingState) -> ServingState:
    """Replace the state file atomically; returns the state as written (with its time)."""
    state = replace(state, updated_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
    body = (json.dumps(state.to_json(), indent=2) + "\n").encode("utf-8")
    replace_file_atomically(state_path(model_path), body)
    return state


def locked(model_path: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the model's state lock for a read-modify-write (blocks other editors)."""
    return file_lock(model_path / f"{STATE_FILE}.lock")


class StateLock:
    """The state lock held across awaits (the admin routes load versions while holding it)."""

    def __init__(self, file: Any) -> None:
        self._file = file

    @classmethod
    def acquire(cls, model_path: Path) -> StateLock:
        file = open(model_path / f"{STATE_FILE}.lock", "a+b")  # noqa: SIM115 (released below)
        fcntl.flock(file, fcntl.LOCK_EX)
        return cls(file)

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


# Edits: pure functions from a state to the next one. ------------------------------------


def with_label(state: ServingState, label: str, version: int) -> ServingState:
    labels = dict(state.labels)
    labels[check_label(label)] = check_version(version)
    return replace(state, labels=labels)


def without_label(state: ServingState, label: str) -> ServingState:
    check_label(label)
    if label not in state.labels:
        known = ", ".join(sorted(state.labels)) or "none"
        raise UnknownVersion(f"label {label!r} is not set; labels: {known}")
    labels = dict(state.labels)
    del labels[label]
    # Removing the canary label also ends its share: a later canary starts from 0.
    share = 0.0 if label == CANARY else state.canary_share
    return replace(state, labels=labels, canary_share=share)


def with_canary_share(state: ServingState, share: float) -> ServingState:
    share = check_share(share)
    if share > 0 and CANARY not in state.labels:
        raise StateConflict("no version is labelled 'canary'; label one before giving it traffic")
    return replace(state, canary_share=share)


def rolled_back(state: ServingState) -> ServingState:
    """All traffic to ``stable``, canary share 0, ``shadow`` cleared.

    The ``canary`` label stays (so what was tried remains visible and a client asking for it
    by name still gets it); it just receives no share of the default traffic.
    """
    if STABLE not in state.labels:
        raise StateConflict(
            "no version is labelled 'stable', so there is nothing to roll back to; "
            "label one first (textcls models label NAME stable VERSION)"
        )
    labels = {k: v for k, v in state.labels.items() if k != SHADOW}
    return replace(state, labels=labels, canary_share=0.0)


def model_path_of(model_dir: Path, name: str) -> Path:
    """``model_dir/name`` if it holds versions, else UnknownModel naming the models."""
    names = model_names(model_dir)
    if name not in names:
        raise UnknownModel(f"model {name!r} not found; models: {', '.join(names) or 'none'}")
    return model_dir / name


def check_version_on_disk(model_dir: Path, name: str, version: int) -> None:
    """UnknownVersion, naming the versions there, unless the version folder exists."""
    check_version(version)
    on_disk = versions(model_dir / name)
    if version not in on_disk:
        shown = ", ".join(map(str, on_disk)) or "none"
        raise UnknownVersion(f"model {name!r} has no version {version}; versions: {shown}")


def check_metadata(model_dir: Path, name: str, version: int) -> None:
    """UnusableVersion unless the version's metadata reads (all the CLI checks, no TF)."""
    try:
        read_metadata(version_path(model_dir, name, version))
    except ArtifactError as exc:
        raise UnusableVersion(f"model {name!r} version {version} cannot be used: {exc}") from exc


def referenced_versions(state: ServingState) -> set[int]:
    return set(state.labels.values())
