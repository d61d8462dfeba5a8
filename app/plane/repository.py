"""The model repository: load each model's primary and labelled versions, watch for changes.

The primary version (labelled ``stable``, else the pinned or newest one) answers requests that
name no version; versions with other labels (``canary``, ``shadow``, names clients ask for) are
loaded beside it. Each poll re-reads ``models/<name>/serving.json`` (app.serving_state), so a
label or canary change made by the CLI or another replica applies here within
``TEXTCLS_POLL_INTERVAL_S``. A new version is loaded and warmed up beside those serving, then
swapped in on the event loop with no ``await`` between the assignments; requests already queued
on a retired version finish there, then its threads stop and its memory is released. A version
that fails to load is logged, shown in /models and never replaces a working one; it is retried
only when its folder changes. Admin edits (``edit_state``) load first and write the state only
when every version it names loaded (app.plane.state_edit). A model's entry and the route of a
request are app.plane.routing; loading, serving and retiring one version app.plane.version_loader.

The default model (app.plane.default_model) is recorded when the first model serves, so a model
added later never takes the requests that name none. The service is ready once the first scan
has loaded (or failed for good) every model it found, so a load balancer never sends a replica
a request for a model still loading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from app.config import Settings
from app.errors import ModelNotFound, StateConflict
from app.metrics import Metrics
from app.plane import heap, routing
from app.plane import serving_state as ss
from app.plane.default_model import DefaultModel
from app.plane.device import Device
from app.plane.loaded_model import LoadedModel
from app.plane.routing import ModelEntry, Serving
from app.plane.state_edit import release_preloaded, write_edit
from app.plane.traffic import Route
from app.plane.version_loader import VersionLoader
from training.artifact import (
    ArtifactError,
    model_names,
    version_path,
    versions,
)

log = logging.getLogger(__name__)


class ModelRepository:
    """Loads, serves and hot-swaps the versions under ``settings.model_dir``."""

    def __init__(self, settings: Settings, device: Device, metrics: Metrics | None = None):
        self.settings = settings
        self.device = device
        self.metrics = metrics
        self.versions = VersionLoader(settings, device, metrics)
        self.entries: dict[str, ModelEntry] = {}
        self.started = False  # the first scan and load have finished
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_lock = asyncio.Lock()
        self.default = DefaultModel(settings.model_dir, settings.default_model)

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Begin the first load in the background (so /healthz answers), then poll."""
        self._tasks.append(asyncio.create_task(self._start(), name="model-repository"))

    async def _start(self) -> None:
        interval = self.settings.poll_interval_s
        while True:
            try:
                await self.refresh()
            except OSError as exc:  # e.g. shared storage briefly unavailable
                log.warning("cannot scan %s: %s", self.settings.model_dir, exc)
            except Exception:  # an unforeseen fault must not end hot reload for good
                log.exception("model repository refresh failed; retrying in %s s", interval)
            self.default.say(self.entries)  # before ready, so it is said before any request
            self.started = True
            if interval <= 0:
                return
            await asyncio.sleep(interval)

    async def wait_started(self, timeout: float | None = None) -> None:
        """Wait until the first load has finished (for tests and scripts)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.started:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("model repository did not finish loading")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()
        for entry in self.entries.values():
            for serving in [entry.serving, *entry.others.values()]:
                if serving is not None:
                    await self.versions.retire(serving)
            entry.serving = None
            entry.others = {}

    @property
    def ready(self) -> bool:
        """Every model found at start-up has loaded or failed for good, and one serves."""
        return self.started and any(e.serving is not None for e in self.entries.values())

    # loading ---------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Scan the model directory once and load whatever should now be served."""
        async with self._refresh_lock:
            names = await asyncio.to_thread(model_names, self.settings.model_dir)
            for name in names:
                self.entries.setdefault(name, ModelEntry(name=name))
            await asyncio.to_thread(self.default.read)
            for name in names:
                await self._refresh_model(self.entries[name])
            if len(names) == 1 and self.entries[names[0]].serving is not None:
                await asyncio.to_thread(self.default.record_first, names[0])

    async def _refresh_model(self, entry: ModelEntry) -> None:
        model_path = self.settings.model_dir / entry.name
        on_disk = await asyncio.to_thread(versions, model_path)
        state = await asyncio.to_thread(self._read_state, entry, model_path)
        before = (entry.serving.model.version if entry.serving else None, set(entry.others))
        stable = state.labels.get(ss.STABLE)
        if stable is not None:
            await self._refresh_primary(entry, on_disk, [stable], pinned=True)
        if stable is not None and entry.serving is None:
            # Nothing serves yet (start-up) and stable does not load: rather than answer 503
            # to everyone, serve as if unlabelled; /models and the log say why.
            log.error(
                "model %s: stable version %s does not load; serving the newest that does",
                entry.name,
                stable,
            )
            stable = None
        if stable is None:
            pinned = self.settings.pinned_versions.get(entry.name)
            candidates = [pinned] if pinned is not None else sorted(on_disk, reverse=True)
            await self._refresh_primary(entry, on_disk, candidates, pinned=pinned is not None)
        await self._refresh_others(entry, on_disk, state)
        after = (entry.serving.model.version if entry.serving else None, set(entry.others))
        if after != before:
            # Once the retired versions are gone: collect them, freeze the new ones.
            log.info("heap settled after the swap in %.0f ms", heap.settle() * 1000)

    def _read_state(self, entry: ModelEntry, model_path: Path) -> ss.ServingState:
        """The model's serving state; an unreadable file keeps the last good one (logged)."""
        stamp = ss.stamp(model_path)
        if stamp == entry.state_stamp and entry.state_error is None:
            return entry.state
        try:
            state = ss.read_state(model_path)
        except ss.StateError as exc:
            if entry.state_error != str(exc):
                log.error("%s; keeping the previous serving state", exc)
            entry.state_error = str(exc)
            return entry.state
        entry.state_stamp, entry.state_error = stamp, None
        return state

    async def _refresh_primary(
        self, entry: ModelEntry, on_disk: list[int], candidates: list[int], *, pinned: bool
    ) -> None:
        """Load the first of ``candidates`` that loads, unless it already serves."""
        current = entry.serving.model.version if entry.serving else None
        for version in candidates:
            if version == current:
                return
            if not pinned and current is not None and version < current:
                return  # never roll back on our own: a removed folder keeps serving
            if version not in on_disk:
                path = version_path(self.settings.model_dir, entry.name, version)
                self.versions.record_failure(
                    entry, version, error=f"{path}: version not found", fingerprint=()
                )
                return
            existing = entry.others.get(version)
            if existing is not None:  # e.g. the canary promoted to stable: already warm
                await self._swap(entry, existing.model, existing)
                return
            model = await self.versions.load(entry, version)
            if model is not None:
                await self._swap(entry, model)
                return

    async def _refresh_others(
        self, entry: ModelEntry, on_disk: list[int], state: ss.ServingState
    ) -> None:
        """Load the labelled versions beside the primary, retire the unlabelled, re-route."""
        primary = entry.serving.model.version if entry.serving else None
        wanted = {v for v in state.labels.values() if v != primary and v in on_disk}
        for version in sorted(wanted - set(entry.others)):
            model = await self.versions.load(entry, version)
            if model is not None:
                entry.others[version] = self.versions.serving_for(model)
                self.versions.count_served(model)
        retired = [entry.others.pop(v) for v in list(entry.others) if v not in wanted]
        self._apply_state(entry, state)  # no await between: requests see the new routes
        for serving in retired:
            await self.versions.retire(serving)

    def _apply_state(self, entry: ModelEntry, state: ss.ServingState) -> None:
        """Route by ``state``, with each label on a version loaded here."""
        changed = state != entry.state
        entry.state = state
        entry.effective = routing.effective_state(entry, state)
        if changed:
            log.info(
                "model %s serving state: labels %s, canary share %s",
                entry.name,
                state.labels,
                state.canary_share,
            )
        if self.metrics is not None:
            self.metrics.set_serving_state(entry.name, entry.effective.labels, state.canary_share)

    async def _swap(
        self, entry: ModelEntry, model: LoadedModel, existing: Serving | None = None
    ) -> None:
        """Make ``model`` the primary; the old one moves to ``others`` (retired after, if no
        label names it)."""
        old = entry.serving
        if existing is not None:
            entry.others.pop(model.version, None)
            entry.serving = existing  # the swap: one assignment on the loop
        else:
            entry.serving = self.versions.serving_for(model)
            self.versions.count_served(model)
        log.info(
            "serving model %s version %s on %s%s",
            model.name,
            model.version,
            model.device.kind,
            f" (was version {old.model.version})" if old else "",
        )
        if old is not None:
            # Kept beside the new primary: _refresh_others retires it unless still labelled.
            entry.others[old.model.version] = old

    # lookup ----------------------------------------------------------------------------
    def default_model(self) -> tuple[str | None, str | None]:
        """(the model answering requests that name none, where that choice comes from)."""
        return self.default.choose(self.entries)

    def entry_for(self, name: str | None) -> ModelEntry:
        """The named (or default) model's entry, or the error that names what exists."""
        return routing.entry_for(self.entries, name, self.default_model()[0])

    def route(
        self, name: str | None, version: int | str | None, session: str | None = None
    ) -> tuple[Serving, Serving | None, Route]:
        """(the version that answers, the shadow version or None, the route taken)."""
        entry = self.entry_for(name)
        return routing.route(entry, version, session)

    def resolve(self, name: str | None, version: int | str | None) -> Serving:
        """The serving version for a request, or the error that names what exists."""
        return self.route(name, version)[0]

    # admin edits -----------------------------------------------------------------------
    async def edit_state(
        self, name: str, change: Callable[[ss.ServingState], ss.ServingState]
    ) -> ss.ServingState:
        """Apply ``change`` to the model's serving state, as every replica will.

        Under the state file's lock: read the file, apply ``change`` (StateError if it is
        invalid), load every version the new state names that is not loaded here
        (VersionUnloadable, and nothing written, if one fails), write the file, then route by
        it here at once. Other replicas follow within their poll interval.
        """
        async with self._refresh_lock:
            if name not in self.entries:
                known = ", ".join(sorted(self.entries)) or "none"
                raise ModelNotFound(f"model {name!r} not found; models: {known}")
            entry = self.entries[name]
            written = await write_edit(
                entry, self.settings.model_dir, change, versions=self.versions
            )
            entry.state_stamp = None  # read it back now, whatever the stamp says
            await self._refresh_model(entry)
            await release_preloaded(entry)  # loaded but, in the end, not needed
            return written

    async def set_default(self, name: str) -> None:
        """Record ``name`` as the default model for every replica; it must serve here."""
        async with self._refresh_lock:
            entry = self.entries.get(name)
            if entry is None:
                known = ", ".join(sorted(self.entries)) or "none"
                raise ModelNotFound(f"model {name!r} not found; models: {known}")
            if entry.serving is None:
                raise StateConflict(
                    f"model {name!r} has no version that serves here ({entry.status}); "
                    "nothing was changed"
                )
            try:
                await asyncio.to_thread(self.default.write, name, self.versions.store)
            except ArtifactError as exc:
                raise ModelNotFound(str(exc)) from None
            await asyncio.to_thread(self.default.read)
            self.default.say(self.entries)
