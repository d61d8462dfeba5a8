"""The model repository: load each model's newest (or pinned) version, watch for new ones.

A new version is loaded and warmed up beside the one serving, then swapped in with one
assignment on the event loop; requests already queued on the old version finish there, then
its thread stops and its memory is released. A version that fails to load is logged, shown in
/models and never replaces a working one; it is retried only when its folder changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings
from app.errors import InvalidInput, ModelNotFound, ModelNotReady, VersionNotFound
from app.metrics import Metrics
from app.plane import heap
from app.plane.batcher import Batcher
from app.plane.device import Device
from app.plane.loaded_model import LoadedModel, LoadError
from training.artifact import model_names, version_path, versions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Serving:
    """The version answering a model's requests, with its batch queue."""

    model: LoadedModel
    batcher: Batcher


@dataclass(slots=True, kw_only=True)
class VersionFailure:
    version: int
    error: str
    at: float
    fingerprint: tuple[int, ...]


@dataclass(slots=True, kw_only=True)
class ModelEntry:
    """Everything the repository knows about one model name."""

    name: str
    serving: Serving | None = None
    failures: dict[int, VersionFailure] = field(default_factory=dict)
    loading: int | None = None


def _fingerprint(path: Path) -> tuple[int, ...]:
    """Changes when a version folder is rewritten, so a fixed folder is tried again."""
    stamps = []
    for p in (path, path / "saved_model.pb", path / "metadata.json", path / "variables"):
        try:
            stamps.append(p.stat().st_mtime_ns)
        except OSError:
            stamps.append(0)
    return tuple(stamps)


class ModelRepository:
    """Loads, serves and hot-swaps the versions under ``settings.model_dir``."""

    def __init__(self, settings: Settings, device: Device, metrics: Metrics | None = None):
        self.settings = settings
        self.device = device
        self.metrics = metrics
        self.entries: dict[str, ModelEntry] = {}
        self.started = False  # the first scan and load have finished
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_lock = asyncio.Lock()
        self._default_said: tuple[str | None, tuple[str, ...]] | None = None

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
            self.started = True
            self._say_default()
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
            if entry.serving is not None:
                await self._retire(entry.serving)
                entry.serving = None

    @property
    def ready(self) -> bool:
        """At least one model is loaded and warmed up."""
        return any(e.serving is not None for e in self.entries.values())

    # loading ---------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Scan the model directory once and load whatever should now be served."""
        async with self._refresh_lock:
            names = await asyncio.to_thread(model_names, self.settings.model_dir)
            for name in names:
                self.entries.setdefault(name, ModelEntry(name=name))
            for name in names:
                await self._refresh_model(self.entries[name])

    async def _refresh_model(self, entry: ModelEntry) -> None:
        model_path = self.settings.model_dir / entry.name
        on_disk = await asyncio.to_thread(versions, model_path)
        pinned = self.settings.pinned_versions.get(entry.name)
        current = entry.serving.model.version if entry.serving else None
        candidates = [pinned] if pinned is not None else sorted(on_disk, reverse=True)
        for version in candidates:
            if version == current:
                return
            if pinned is None and current is not None and version < current:
                return  # never roll back on our own: a removed folder keeps serving
            path = version_path(self.settings.model_dir, entry.name, version)
            if version not in on_disk:
                self._record_failure(
                    entry, version, error=f"{path}: pinned version not found", fingerprint=()
                )
                return
            fingerprint = await asyncio.to_thread(_fingerprint, path)
            known = entry.failures.get(version)
            if known is not None and known.fingerprint == fingerprint:
                continue  # failed before and unchanged since: try the next older version
            model = LoadedModel(entry.name, version, path, device=self.device)
            entry.loading = version
            try:
                await asyncio.to_thread(model.load, min(self.settings.max_batch_size, 64))
            except LoadError as exc:
                model.release()
                self._record_failure(entry, version, error=str(exc), fingerprint=fingerprint)
                continue
            finally:
                entry.loading = None
            entry.failures.pop(version, None)
            await self._swap(entry, model)
            return

    def _record_failure(
        self, entry: ModelEntry, version: int, *, error: str, fingerprint: tuple[int, ...]
    ) -> None:
        log.error("model %s version %s failed to load: %s", entry.name, version, error)
        entry.failures[version] = VersionFailure(
            version=version, error=error, at=time.time(), fingerprint=fingerprint
        )
        if self.metrics is not None:
            self.metrics.model_reloads.labels(entry.name, "failure").inc()

    async def _swap(self, entry: ModelEntry, model: LoadedModel) -> None:
        s = self.settings
        batcher = Batcher(
            model,
            max_batch_size=s.max_batch_size,
            max_batch_wait_s=s.max_batch_wait_ms / 1000,
            max_queue_texts=s.max_queue_texts,
            metrics=self.metrics,
            fallback_margin=s.fallback_margin,
            threads=s.inference_threads,
        )
        old = entry.serving
        entry.serving = Serving(model, batcher)  # the swap: one assignment on the loop
        log.info(
            "serving model %s version %s on %s%s",
            model.name,
            model.version,
            model.device.kind,
            f" (was version {old.model.version})" if old else "",
        )
        if self.metrics is not None:
            self.metrics.model_reloads.labels(entry.name, "success").inc()
            self.metrics.set_model_served(model.name, model.version, model.device.kind)
        if old is not None:
            await self._retire(old)
        log.info("heap settled after the swap in %.0f ms", heap.settle() * 1000)

    async def _retire(self, serving: Serving) -> None:
        if self.metrics is not None:
            m = serving.model
            self.metrics.set_model_retired(m.name, m.version, m.device.kind)
        # Texts already queued on the old version finish there before it is released.
        await asyncio.to_thread(serving.batcher.close)
        await asyncio.to_thread(serving.model.release)

    # lookup ----------------------------------------------------------------------------
    def resolve(self, name: str | None, version: int | None) -> Serving:
        """The serving version for a request, or the error that names what exists."""
        if name is None:
            name = self._default_name()
        entry = self.entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self.entries)) or "none"
            raise ModelNotFound(f"model {name!r} not found; models: {known}")
        serving = entry.serving
        if serving is None:
            if entry.failures and entry.loading is None:
                raise ModelNotReady(f"model {name!r} has no version that loads; see /models")
            raise ModelNotReady(f"model {name!r} is still loading")
        if version is not None and version != serving.model.version:
            raise VersionNotFound(
                f"model {name!r} version {version} is not served; "
                f"serving version {serving.model.version}"
            )
        return serving

    def _say_default(self) -> None:
        """Log which model answers requests that name none, once per change of the models.

        With several models and no TEXTCLS_DEFAULT_MODEL, such requests get 422: the usual
        way to meet that is training a second model beside the example, so it is a warning.
        """
        default = self.settings.default_model
        names = tuple(sorted(self.entries))
        if (default, names) == self._default_said or not names:
            return
        self._default_said = (default, names)
        listed = ", ".join(names)
        if default is not None and default not in names:
            log.warning(
                "TEXTCLS_DEFAULT_MODEL=%s names no model in %s (models: %s): requests without "
                "'model' get 404",
                default,
                self.settings.model_dir,
                listed,
            )
        elif default is not None:
            log.info("requests without 'model' go to %s (TEXTCLS_DEFAULT_MODEL)", default)
        elif len(names) == 1:
            log.info("requests without 'model' go to %s, the only model", names[0])
        else:
            log.warning(
                "%d models are served (%s) and TEXTCLS_DEFAULT_MODEL is not set: /classify "
                "requests without 'model' get 422. Set TEXTCLS_DEFAULT_MODEL=%s (or another) "
                "to choose the default, or name the model in each request",
                len(names),
                listed,
                names[0],
            )

    def _default_name(self) -> str:
        if self.settings.default_model:
            return self.settings.default_model
        if len(self.entries) == 1:
            return next(iter(self.entries))
        if not self.entries:
            raise ModelNotReady("no model is loaded yet")
        names = ", ".join(sorted(self.entries))
        raise InvalidInput(
            f"several models are served ({names}); name one in 'model', or set "
            "TEXTCLS_DEFAULT_MODEL on the server to choose the default"
        )
