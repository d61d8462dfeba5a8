"""A replica's local copies of versions from an object store (``TEXTCLS_CACHE_DIR``).

A version is downloaded into a temporary folder, each file checked against its completion
marker (size and sha256), then renamed into place with a copy of the marker: a cached folder
with its marker is a verified copy, which a replica can serve when it starts while the store
is unreachable. The cache is bounded (``max_bytes``): past it, the least recently used
versions not in use are removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from app.plane.store.marker import (
    MARKER_FILE,
    Manifest,
    MarkerError,
    marker_bytes,
    parse_marker,
    sha256_of,
)
from app.plane.store.objects import ObjectStore

log = logging.getLogger(__name__)


class VersionCache:
    """Verified local copies of ``store``'s versions under ``root``."""

    def __init__(self, root: Path, store: ObjectStore, max_bytes: int) -> None:
        # One folder per store, so two stores (or two prefixes of one bucket) never mix.
        self.root = root / hashlib.sha256(store.url.encode()).hexdigest()[:16]
        self.store = store
        self.max_bytes = max_bytes

    def path(self, name: str, version: int) -> Path:
        return self.root / name / str(version)

    def fetch(self, name: str, version: int, manifest: Manifest) -> Path:
        """The local copy of ``name``/``version``, downloaded and checked if not yet cached;
        MarkerError if a file does not match the marker (nothing is cached then)."""
        dest = self.path(name, version)
        if (dest / MARKER_FILE).is_file():
            os.utime(dest)  # recently used
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=dest.parent))
        try:
            for path, entry in sorted(manifest.items()):
                data = self.store.read(f"{name}/{version}/{path}").data
                digest = hashlib.sha256(data).hexdigest()
                if len(data) != entry.size or digest != entry.sha256:
                    raise MarkerError(
                        f"{path} does not match its completion marker "
                        f"({len(data)} bytes, sha256 {digest[:12]}...)"
                    )
                target = tmp / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            (tmp / MARKER_FILE).write_bytes(marker_bytes(manifest))  # last: now it is whole
            try:
                tmp.rename(dest)
            except OSError:
                # Another process sharing this cache (a worker of the same replica) put its
                # own verified copy there first: that one serves.
                if not (dest / MARKER_FILE).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def verified(self, name: str) -> list[int]:
        """Versions of ``name`` with a whole local copy (every file matches its marker)."""
        found = []
        base = self.root / name
        for folder in base.iterdir() if base.is_dir() else ():
            if not folder.name.isdigit():
                continue
            try:
                manifest = parse_marker((folder / MARKER_FILE).read_bytes())
                if all(sha256_of(folder / p) == e.sha256 for p, e in manifest.items()):
                    found.append(int(folder.name))
            except (OSError, MarkerError):
                continue
        return sorted(found)

    def names(self) -> list[str]:
        return (
            sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        )

    def _copies(self) -> dict[Path, int]:
        """Each cached version folder and its size in bytes."""
        copies = [p for p in self.root.glob("*/*") if p.is_dir() and p.name.isdigit()]
        return {p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in copies}

    def size(self) -> int:
        """Bytes of the cached version copies."""
        return sum(self._copies().values())

    def evict(self, in_use: set[Path]) -> list[Path]:
        """Remove least recently used copies not in ``in_use`` until under ``max_bytes``."""
        sizes = self._copies()
        copies = list(sizes)
        total = sum(sizes.values())
        removed = []
        for copy in sorted(copies, key=lambda p: p.stat().st_mtime):
            if total <= self.max_bytes:
                break
            if copy in in_use:
                continue
            shutil.rmtree(copy, ignore_errors=True)
            total -= sizes[copy]
            removed.append(copy)
            log.info("cache: removed %s (cache over %d bytes)", copy, self.max_bytes)
        return removed
