"""Loading one model version, serving it behind a batcher, and retiring it.

The repository decides which versions of a model serve; ``VersionLoader`` does the work for
one version: load and warm it up (unless it failed before and its folder has not changed
since), put a batcher in front of it, count it, and release it once its queue has drained.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings
from app.metrics import Metrics
from app.plane.batcher import Batcher
from app.plane.cheap_first import CheapFirst
from app.plane.device import Device
from app.plane.drift import DriftWindow
from app.plane.loaded_model import LoadedModel, LoadError
from app.plane.plan import choose_plan
from app.plane.routing import ModelEntry, Serving, VersionFailure
from training.artifact import version_path

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from app.plane.store.objects import ObjectStore

# The repository's logger: load failures are reported as the repository's lines.
log = logging.getLogger("app.plane.repository")


def _fingerprint(path: Path) -> tuple[int, ...]:
    """Changes when a version folder is rewritten, so a fixed folder is tried again."""
    stamps = []
    for p in (path, path / "saved_model.pb", path / "metadata.json", path / "variables"):
        try:
            stamps.append(p.stat().st_mtime_ns)
        except OSError:
            stamps.append(0)
    return tuple(stamps)


class VersionLoader:
    """Loads, serves and retires the versions of ``settings.model_dir``'s models."""

    def __init__(self, settings: Settings, device: Device, metrics: Metrics | None) -> None:
        self.settings = settings
        self.device = device
        self.metrics = metrics
        # The batchers' spans: set by the app factory when tracing is on.
        self.tracer: Tracer | None = None
        # The object store holding the models (and their serving state), when it is one.
        self.store: ObjectStore | None = None
        # Cheap models' texts go before expensive models' batches, across all models here.
        self.cheap_first = CheapFirst()

    async def load(self, entry: ModelEntry, version: int) -> LoadedModel | None:
        """Load and warm up ``version`` (or take the one an admin edit loaded); None if it
        fails now or failed before with its folder unchanged since."""
        model = entry.preloaded.pop(version, None)
        if model is not None:
            return model
        path = version_path(self.settings.model_dir, entry.name, version)
        fingerprint = await asyncio.to_thread(_fingerprint, path)
        known = entry.failures.get(version)
        if known is not None and known.fingerprint == fingerprint:
            return None  # failed before and unchanged since
        model = LoadedModel(entry.name, version, path, device=self.device)
        entry.loading = version
        try:
            await asyncio.to_thread(model.load, min(self.settings.max_batch_size, 64))
        except LoadError as exc:
            model.release()
            self.record_failure(entry, version, error=str(exc), fingerprint=fingerprint)
            return None
        finally:
            entry.loading = None
        entry.failures.pop(version, None)
        return model

    def record_failure(
        self, entry: ModelEntry, version: int, *, error: str, fingerprint: tuple[int, ...]
    ) -> None:
        log.error("model %s version %s failed to load: %s", entry.name, version, error)
        entry.failures[version] = VersionFailure(
            version=version, error=error, at=time.time(), fingerprint=fingerprint
        )
        if self.metrics is not None:
            self.metrics.model_reloads.labels(entry.name, "failure").inc()

    def serving_for(self, model: LoadedModel) -> Serving:
        """The version's own batch queue and inference threads, sized by its measured cost."""
        plan = choose_plan(model.name, model.ms_per_text, self.settings)
        batcher = Batcher(
            model,
            max_batch_size=plan.max_batch_size,
            max_batch_wait_s=plan.max_batch_wait_ms / 1000,
            max_queue_texts=self.settings.max_queue_texts,
            metrics=self.metrics,
            threads=plan.inference_threads,
            gate=(
                self.cheap_first.expensive(plan.max_hold_ms / 1000, plan.forced_batch_size)
                if plan.expensive
                else self.cheap_first.cheap()
            ),
            drift=self._drift_window(model),
            tracer=self.tracer,
        )
        return Serving(model, batcher, plan)

    def _drift_window(self, model: LoadedModel) -> DriftWindow | None:
        """The version's drift window, when its artifact has reference statistics."""
        reference = model.metadata.reference if model.metadata is not None else None
        if reference is None or self.settings.drift_window == 0:
            return None
        return DriftWindow(
            reference,
            model=model.name,
            version=model.version,
            size=self.settings.drift_window,
            min_texts=self.settings.drift_min_texts,
            metrics=self.metrics,
        )

    def count_served(self, model: LoadedModel) -> None:
        if self.metrics is not None:
            self.metrics.model_reloads.labels(model.name, "success").inc()
            self.metrics.set_model_served(model.name, model.version, model.device.kind)

    async def retire(self, serving: Serving) -> None:
        if self.metrics is not None:
            m = serving.model
            self.metrics.set_model_retired(m.name, m.version, m.device.kind)
        # Texts already queued on the old version finish there before it is released.
        await asyncio.to_thread(serving.batcher.close)
        if serving.batcher.drift is not None:
            serving.batcher.drift.retire(serving.model.name, serving.model.version)
        await asyncio.to_thread(serving.model.release)
