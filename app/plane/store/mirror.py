"""A replica's view of an object-store model repository: its verified local mirror.

Each ``sync`` (one per poll) lists the store, downloads every complete version not yet cached
(``VersionCache``: checked against its completion marker), copies each model's other files
(``serving.json`` and the like) and the repository's own ``serving.json`` when they changed,
and leaves the result under ``root`` in the model folder layout (``root/<name>/<version>/``),
which the model repository serves as it serves a local folder. A version without its marker,
or whose files do not match it, is skipped: named in the log once, kept in ``skipped`` (for
/models), counted, and tried again at the next sync. A store that cannot be reached leaves
the mirror as it was (what is loaded keeps serving), is logged once per outage, and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.metrics import name as metric_name
from app.plane.store.cache import VersionCache
from app.plane.store.marker import MARKER_FILE, MarkerError, check_sizes, read_marker
from app.plane.store.objects import ObjectStore, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class SyncResult:
    """What one sync found: versions fetched now, versions skipped (and why), and whether the
    store answered."""

    fetched: list[tuple[str, int]] = field(default_factory=list)
    skipped: dict[tuple[str, int], str] = field(default_factory=dict)
    reachable: bool = True
    changed: list[str] = field(default_factory=list)  # model files (serving.json) copied now


class StoreMirror:
    """Keeps ``cache.root`` a verified copy of ``cache.store``'s complete versions."""

    def __init__(self, cache: VersionCache, registry: CollectorRegistry) -> None:
        self.cache = cache
        self.store: ObjectStore = cache.store
        self.root = cache.root
        self.skipped: dict[tuple[str, int], str] = {}
        self._tokens: dict[str, str] = {}  # model-level file -> token of the copy held
        self._down = False
        self.store_up = Gauge(
            metric_name("store_up"),
            "1 while the model store answers this process's polls, 0 while it does not.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.store_errors = Counter(
            metric_name("store_errors"),
            "Polls of the model store that failed (store unreachable).",
            registry=registry,
        )
        self.versions_skipped = Counter(
            metric_name("store_versions_skipped"),
            "Times a version was skipped: no completion marker yet, or files that do not match it.",
            ["model"],
            registry=registry,
        )
        self.versions_fetched = Counter(
            metric_name("store_versions_fetched"),
            "Versions downloaded from the model store and verified against their marker.",
            ["model"],
            registry=registry,
        )
        self.cache_bytes = Gauge(
            metric_name("cache_bytes"),
            "Bytes of verified version copies in this replica's cache (TEXTCLS_CACHE_DIR).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.cache_evictions = Counter(
            metric_name("cache_evictions"),
            "Version copies removed from the cache to keep it under TEXTCLS_CACHE_MAX_BYTES.",
            registry=registry,
        )
        self.store_up.set(1)

    def sync(self) -> SyncResult:
        """Bring the mirror up to date with the store; never raises for an unreachable store."""
        result = SyncResult()
        try:
            listing = self.store.list()
            self._sync(listing, result)
        except StoreUnavailable as exc:
            result.reachable = False
            self.store_errors.inc()
            if not self._down:
                self._down = True
                self.store_up.set(0)
                log.warning("model store %s unreachable (%s): serving what is loaded and "
                            "cached until it is back", self.store.url, exc)  # fmt: skip
            return result
        if self._down:
            self._down = False
            self.store_up.set(1)
            log.warning("model store %s is back", self.store.url)
        self.skipped = result.skipped
        return result

    def _sync(self, listing: dict[str, int], result: SyncResult) -> None:
        versions: dict[tuple[str, int], dict[str, int]] = {}
        for key, size in listing.items():
            parts = key.split("/", 2)
            if len(parts) == 3 and parts[1].isdigit():
                versions.setdefault((parts[0], int(parts[1])), {})[parts[2]] = size
            elif len(parts) <= 2 and self._copy_model_file(key):
                result.changed.append(key)
        for (name, version), files in sorted(versions.items()):
            if (self.cache.path(name, version) / MARKER_FILE).is_file():
                continue
            try:
                if MARKER_FILE not in files:
                    raise MarkerError("no completion marker: the upload is unfinished")
                manifest = read_marker(self.store, f"{name}/{version}")
                check_sizes(manifest, files)
                self.cache.fetch(name, version, manifest)
                result.fetched.append((name, version))
                self.versions_fetched.labels(name).inc()
            except MarkerError as exc:
                reason = str(exc)
                result.skipped[(name, version)] = reason
                self.versions_skipped.labels(name).inc()
                if self.skipped.get((name, version)) != reason:
                    log.warning("model %s version %s skipped: %s", name, version, reason)

    def _copy_model_file(self, key: str) -> bool:
        """A model's own file (``<name>/serving.json``) or the repository's (``serving.json``,
        the default model): copied when its token changed (True)."""
        blob = self.store.read(key)
        if self._tokens.get(key) == blob.token:
            return False
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{target.name}")
        tmp.write_bytes(blob.data)
        tmp.replace(target)  # a reader sees the old file or the new
        self._tokens[key] = blob.token
        return True

    def evict(self, in_use: set[Path]) -> None:
        """Keep the cache under its bound (``VersionCache.evict``), and say its size."""
        self.cache_evictions.inc(len(self.cache.evict(in_use)))
        self.cache_bytes.set(self.cache.size())

    def path_of(self, name: str) -> Path:
        """The mirrored folder of model ``name``."""
        return self.root / name
