"""The completion marker: written last when a version is published, it lists every file of the
version with its size and sha256. A version counts only once its marker is there and its files
match it, so an upload still in progress, or one that died half way, is never loaded."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.plane.store.objects import NotFound, ObjectStore

MARKER_FILE = "textcls-complete.json"
MARKER_SCHEMA = 1
CHUNK = 1 << 20


class MarkerError(Exception):
    """A version's marker is missing, unreadable, or its files do not match it."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    size: int
    sha256: str


Manifest = dict[str, FileEntry]  # path in the version folder -> size and digest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe(folder: Path) -> Manifest:
    """Every file under a local version folder (the marker itself left out)."""
    return {
        p.relative_to(folder).as_posix(): FileEntry(p.stat().st_size, sha256_of(p))
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER_FILE
    }


def marker_bytes(manifest: Manifest) -> bytes:
    files = {k: {"size": e.size, "sha256": e.sha256} for k, e in sorted(manifest.items())}
    document = {
        "schema": MARKER_SCHEMA,
        "completed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    return json.dumps(document, indent=2).encode()


def parse_marker(data: bytes) -> Manifest:
    try:
        files = json.loads(data)["files"]
        return {k: FileEntry(int(v["size"]), str(v["sha256"])) for k, v in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MarkerError(f"unreadable completion marker: {exc}") from exc


def read_marker(store: ObjectStore, prefix: str) -> Manifest:
    """The marker of the version at ``prefix``; MarkerError if there is none."""
    try:
        return parse_marker(store.read(f"{prefix}/{MARKER_FILE}").data)
    except NotFound:
        raise MarkerError("no completion marker: the upload is unfinished") from None


def check_sizes(manifest: Manifest, listing: dict[str, int]) -> None:
    """MarkerError naming the first file missing from ``listing`` (path -> size) or of
    another size than its marker says."""
    for path, entry in sorted(manifest.items()):
        size = listing.get(path)
        if size is None:
            raise MarkerError(f"{path} is listed in the completion marker but missing")
        if size != entry.size:
            raise MarkerError(f"{path} has {size} bytes; its completion marker says {entry.size}")


def publish_folder(store: ObjectStore, folder: Path, prefix: str) -> Manifest:
    """Upload a local version folder to ``prefix``, file by file, then its marker last."""
    manifest = describe(folder)
    for path in manifest:
        store.write(f"{prefix}/{path}", (folder / path).read_bytes())
    store.write(f"{prefix}/{MARKER_FILE}", marker_bytes(manifest))
    return manifest
