"""An admin edit of a model's serving state: checked, its versions loaded, then written.

``ModelRepository.edit_state`` calls ``write_edit`` under its refresh lock and then routes by
what was written. The versions an edit names are loaded before the file changes and kept in
``ModelEntry.preloaded`` for the refresh that follows, so a version that does not load leaves
the file (and every replica) as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from app.errors import ModelStoreUnavailable, VersionUnloadable
from app.plane import serving_state as ss
from app.plane.routing import ModelEntry
from app.plane.store.objects import StoreError
from app.plane.store.published import edit_state
from app.plane.version_loader import VersionLoader


async def write_edit(
    entry: ModelEntry,
    model_dir: Path,
    change: Callable[[ss.ServingState], ss.ServingState],
    *,
    versions: VersionLoader,
) -> ss.ServingState:
    """Under the state file's lock: read the file, apply ``change`` (StateError if it is
    invalid), load every version the new state names that is not loaded here
    (VersionUnloadable, and nothing written, if one fails), and write the file; with the
    models in an object store, write it there with a conditional write (``change`` applied
    again to what another replica wrote in between), then here."""
    load = versions.load
    name = entry.name
    model_path = model_dir / name
    lock = await asyncio.to_thread(ss.StateLock.acquire, model_path)
    try:
        current = await asyncio.to_thread(ss.read_state, model_path)
        new = change(current)
        for version in sorted(ss.referenced_versions(new)):
            ss.check_version_on_disk(model_dir, name, version)
        for version in sorted(ss.referenced_versions(new) - set(entry.versions_loaded())):
            entry.failures.pop(version, None)  # an explicit ask: try it again
            model = await load(entry, version)
            if model is None:
                failure = entry.failures.get(version)
                reason = failure.error if failure else "it did not load"
                raise VersionUnloadable(
                    f"model {name!r} version {version} cannot be loaded: {reason}; "
                    "nothing was changed"
                )
            entry.preloaded[version] = model
        if versions.store is not None:
            try:
                new = await asyncio.to_thread(edit_state, versions.store, name, change)
            except StoreError as exc:
                raise ModelStoreUnavailable(f"{exc}; nothing was changed") from exc
        return await asyncio.to_thread(ss.write_state, model_path, new)
    except BaseException:
        await release_preloaded(entry)
        raise
    finally:
        await asyncio.to_thread(lock.release)


async def release_preloaded(entry: ModelEntry) -> None:
    """Release the versions an edit loaded that no refresh took."""
    for model in entry.preloaded.values():
        await asyncio.to_thread(model.release)
    entry.preloaded.clear()
