"""A model repository in an object store as its editors see it (the CLI, the admin routes).

The versions that count are those with their completion marker. Each model's serving state
(``<name>/serving.json``) and the repository's default model (``serving.json``) change only by
conditional writes (``update``), so an edit from the CLI and one from any replica never lose
one another. A new version gets the next free number, claimed by a create-only write of its
metadata, then its files and its marker last (``publish_folder``), so two trainers publishing
at once never share a number. ``fetch_version`` copies one verified version to a local folder
for the commands that read a model (evaluate, predict, retrain).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from app.plane import serving_state as ss
from app.plane.store.cache import VersionCache
from app.plane.store.marker import MARKER_FILE, check_sizes, publish_folder, read_marker
from app.plane.store.objects import NotFound, ObjectStore, StoreError, update
from training.artifact import (
    METADATA_FILE,
    REPOSITORY_STATE_FILE,
    ArtifactError,
    Metadata,
    default_model_of,
    repository_state_bytes,
    write_metadata,
)

CLAIM_ATTEMPTS = 100


def published(store: ObjectStore, prefix: str = "") -> dict[str, list[int]]:
    """Model name -> its complete versions (marker present), ascending, under ``prefix``."""
    found: dict[str, set[int]] = {}
    for key in store.list(prefix):
        parts = key.split("/")
        if len(parts) == 3 and parts[1].isdigit() and parts[2] == MARKER_FILE:
            found.setdefault(parts[0], set()).add(int(parts[1]))
    return {name: sorted(v) for name, v in sorted(found.items())}


def published_versions(store: ObjectStore, name: str) -> list[int]:
    """The complete versions of ``name``; UnknownModel (naming the models) if it has none."""
    versions = published(store, name).get(name)
    if not versions:
        names = ", ".join(published(store)) or "none"
        raise ss.UnknownModel(f"model {name!r} not found in {store.url}; models: {names}")
    return versions


def check_published(store: ObjectStore, name: str, version: int) -> None:
    """UnknownVersion unless ``name``/``version`` is complete in the store."""
    ss.check_version(version)
    versions = published_versions(store, name)
    if version not in versions:
        shown = ", ".join(map(str, versions))
        raise ss.UnknownVersion(
            f"model {name!r} has no complete version {version} in {store.url}; versions: {shown}"
        )


def read_state(store: ObjectStore, name: str) -> ss.ServingState:
    """``name``'s serving state in the store (none yet: no labels, no canary)."""
    key = f"{name}/{ss.STATE_FILE}"
    try:
        return ss.from_json(json.loads(store.read(key).data))
    except NotFound:
        return ss.EMPTY
    except ValueError as exc:  # not JSON, or StateError
        raise ss.StateError(f"{store.url}/{key}: {exc}") from exc


def edit_state(
    store: ObjectStore, name: str, change: Callable[[ss.ServingState], ss.ServingState]
) -> ss.ServingState:
    """``change`` applied to ``<name>/serving.json`` without a lock: written only if nobody
    wrote since it was read, else applied again to the newer state; the state written."""
    written: list[ss.ServingState] = []

    def apply(current: bytes | None) -> bytes:
        state = ss.from_json(json.loads(current)) if current else ss.ServingState()
        new = replace(change(state), updated_at=datetime.now(UTC).isoformat())
        written.append(new)
        return (json.dumps(new.to_json(), indent=2) + "\n").encode("utf-8")

    update(store, f"{name}/{ss.STATE_FILE}", apply)
    return written[-1]


def read_default(store: ObjectStore) -> str | None:
    """The default model recorded in the store (None: none recorded)."""
    try:
        data = store.read(REPOSITORY_STATE_FILE).data
    except NotFound:
        return None
    return default_model_of(data, f"{store.url}/{REPOSITORY_STATE_FILE}")


def write_default(store: ObjectStore, name: str) -> None:
    """Record ``name`` as the default model; ArtifactError unless it has a complete version."""
    names = published(store)
    if name not in names:
        raise ArtifactError(f"model {name!r} not found; models: {', '.join(names) or 'none'}")
    update(store, REPOSITORY_STATE_FILE, lambda _current: repository_state_bytes(name))


def publish_next(store: ObjectStore, version_dir: Path) -> tuple[str, int]:
    """Publish a local version folder as its model's next version in the store; the model's
    name and the version's number.

    The number is claimed by writing the version's metadata (renumbered) only if no object has
    that key; a number another publisher took first (or a half upload left) is passed over.
    """
    # The folder's own name is no version number here (a temporary or staging folder).
    try:
        meta = Metadata.model_validate_json((version_dir / METADATA_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{version_dir}: no usable {METADATA_FILE}: {exc}") from exc
    for _ in range(CLAIM_ATTEMPTS):
        keys = [k.split("/") for k in store.list(meta.name) if k.startswith(meta.name + "/")]
        taken = [int(parts[1]) for parts in keys if parts[1].isdigit()]
        meta.version = max(taken, default=0) + 1
        write_metadata(version_dir, meta)
        prefix = f"{meta.name}/{meta.version}"
        data = (version_dir / METADATA_FILE).read_bytes()
        if store.write_if(f"{prefix}/{METADATA_FILE}", data, None):
            publish_folder(store, version_dir, prefix)
            return meta.name, meta.version
    raise StoreError(f"{store.url}/{meta.name}: could not claim a version number")


def newest_metadata(store: ObjectStore, name: str) -> Metadata | None:
    """The metadata of ``name``'s newest complete version (None: it has none)."""
    versions = published(store, name).get(name)
    if not versions:
        return None
    key = f"{name}/{versions[-1]}/{METADATA_FILE}"
    try:
        return Metadata.model_validate_json(store.read(key).data)
    except ValueError as exc:
        raise ArtifactError(f"{store.url}/{key}: invalid metadata: {exc}") from exc


def fetch_version(store: ObjectStore, name: str, version: int, *, into: Path) -> Path:
    """A verified local copy of ``name``/``version`` under ``into`` (``into/<digest>/<name>/
    <version>``); MarkerError if it is incomplete or does not match its marker."""
    prefix = f"{name}/{version}"
    manifest = read_marker(store, prefix)
    check_sizes(manifest, {k.removeprefix(prefix + "/"): v for k, v in store.list(prefix).items()})
    return VersionCache(into, store, max_bytes=0).fetch(name, version, manifest)
