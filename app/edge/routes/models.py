"""GET /models and /models/{name}: the default model, each model's state (ready, loading,
failed), served versions, version labels and traffic, classes, metrics, threshold, device,
batching plan."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from app.edge.deps import RepositoryDep, ServicesDep
from app.edge.schemas import DriftInfo, ModelInfo, ModelsResponse, SkippedVersion
from app.errors import ModelNotFound
from app.plane import drift
from app.plane.repository import ModelRepository
from app.plane.routing import ModelEntry
from training.artifact import versions

router = APIRouter(prefix="/models", tags=["models"])


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def describe(repo: ModelRepository, entry: ModelEntry) -> ModelInfo:
    serving = entry.serving
    info = ModelInfo(
        name=entry.name,
        ready=serving is not None,
        state=entry.status,  # type: ignore[arg-type]
        default=repo.default_model()[0] == entry.name,
        version=serving.model.version if serving else None,
        versions_on_disk=versions(repo.settings.model_dir / entry.name),
        versions_loaded=entry.versions_loaded(),
        labels=dict(sorted(entry.state.labels.items())),
        traffic={**entry.effective.traffic(), "canary": entry.state.canary_share},
        serving_state_error=entry.state_error,
        loading=entry.loading,
        device=repo.device.kind,
        failures=[
            {"version": f.version, "error": f.error, "at": _iso(f.at)}  # type: ignore[misc]
            for f in sorted(entry.failures.values(), key=lambda f: f.version)
        ],
    )
    if serving is not None and serving.model.metadata is not None:
        meta = serving.model.metadata
        info.classes = list(meta.labels)
        info.threshold = meta.fallback.threshold
        info.margin = meta.fallback.margin
        info.metrics = meta.metrics
        info.created_at = meta.created_at
        info.loaded_at = _iso(serving.model.loaded_at)
    if serving is not None and serving.plan is not None:
        info.batching = serving.plan.as_dict()
    if serving is not None and serving.batcher.drift is not None:
        info.drift = DriftInfo.model_validate(drift.describe(serving.batcher.drift.reading()))
    return info


@router.get("", response_model=ModelsResponse)
async def list_models(services: ServicesDep) -> ModelsResponse:
    """Every model in the repository, with what it serves and what failed to load, and the
    object store's versions skipped (unfinished or not matching their completion marker)."""
    repo = services.repository
    models = [describe(repo, e) for _, e in sorted(repo.entries.items())]
    default, source = repo.default_model()
    skipped = services.mirror.skipped if services.mirror is not None else {}
    return ModelsResponse(
        device=repo.device.kind,
        default_model=default,
        default_model_source=source,  # type: ignore[arg-type]
        models=models,
        skipped=[
            SkippedVersion(name=n, version=v, reason=r) for (n, v), r in sorted(skipped.items())
        ],
    )


@router.get("/{name}", response_model=ModelInfo, responses={404: {"description": "No such model."}})
async def get_model(name: str, repo: RepositoryDep) -> ModelInfo:
    """One model: its served version, labels, threshold, test metrics and load failures."""
    entry = repo.entries.get(name)
    if entry is None:
        known = ", ".join(sorted(repo.entries)) or "none"
        raise ModelNotFound(f"model {name!r} not found; models: {known}")
    return describe(repo, entry)
