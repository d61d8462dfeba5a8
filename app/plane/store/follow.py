"""Serving from an object store: the mirror is synced before the first load, then once per
poll interval, and a sync that brought a version or a changed state file refreshes the
repository at once (so a replica moves within a poll interval plus the load)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from app.config import Settings
from app.metrics import Metrics
from app.plane.repository import ModelRepository
from app.plane.store.cache import VersionCache
from app.plane.store.mirror import StoreMirror
from app.plane.store.objects import open_store

log = logging.getLogger(__name__)


async def start_mirror(settings: Settings, metrics: Metrics) -> StoreMirror:
    """The mirror of ``settings.model_store``, synced once: a store that is unreachable now
    leaves whatever verified copies the cache holds, and says so."""
    assert settings.model_store is not None
    cache = VersionCache(
        settings.cache_dir, open_store(settings.model_store), settings.cache_max_bytes
    )
    if cache.root != Path(settings.model_dir):
        raise AssertionError(f"the mirror {cache.root} is not model_dir {settings.model_dir}")
    mirror = StoreMirror(cache, metrics.registry)
    result = await asyncio.to_thread(mirror.sync)
    mirror.cache_bytes.set(await asyncio.to_thread(cache.size))
    if not result.reachable:
        cached = {name: cache.verified(name) for name in cache.names()}
        log.warning("starting from the verified cached copies in %s: %s", cache.root, cached)
    return mirror


async def follow(mirror: StoreMirror, repository: ModelRepository, interval_s: float) -> None:
    """Sync every ``interval_s``; refresh the repository when the sync changed something."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            result = await asyncio.to_thread(mirror.sync)
            if result.fetched or result.changed:
                await repository.refresh()
            in_use = {
                mirror.cache.path(e.name, s.model.version)
                for e in repository.entries.values()
                for s in [e.serving, *e.others.values()]
                if s is not None
            }
            await asyncio.to_thread(mirror.evict, in_use)
        except Exception:  # a fault here must not end following the store for good
            log.exception("following the model store failed; retrying in %s s", interval_s)
