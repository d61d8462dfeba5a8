"""Admin routes: version labels, canary share and rollback of a model, and the repository's
default model (the admin key).

Every edit of a model goes through ``ModelRepository.edit_state``: loaded here first, then
written to ``models/<name>/serving.json``, which the other replicas read within their poll
interval. Each answers 200 with the model as ``GET /models/{name}`` shows it. The default model
goes to ``models/serving.json`` (``ModelRepository.set_default``); that route answers as
``GET /models`` does.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.edge.admin_auth import authenticate_admin
from app.edge.deps import RepositoryDep, ServicesDep
from app.edge.routes.models import describe, list_models
from app.edge.schemas import ModelInfo, ModelsResponse, ModelVersion
from app.errors import InvalidInput, ModelNotFound, StateConflict, VersionNotFound
from app.plane import serving_state as ss
from app.plane.repository import ModelRepository

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(authenticate_admin)])

ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "No admin key, or a wrong one."},
    403: {"description": "A client's key, or the admin routes are off (no admin key set)."},
    404: {"description": "Unknown model, version or label; the message names what exists."},
    409: {"description": "The version cannot be loaded, or the edit does not fit the state."},
    422: {"description": "An invalid label name or share."},
}


class LabelBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 4}]})
    version: ModelVersion


class DefaultModelBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", protected_namespaces=(), json_schema_extra={"examples": [{"model": "x"}]}
    )
    model: str = Field(min_length=1, max_length=64, description="A model of the repository.")


class TrafficBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"canary": 0.1}]})
    canary: float = Field(ge=0.0, le=1.0, description="Share of traffic for the canary version.")


async def _edit(
    repo: ModelRepository, name: str, change: Callable[[ss.ServingState], ss.ServingState]
) -> ModelInfo:
    try:
        await repo.edit_state(name, change)
    except ss.UnknownModel as exc:
        raise ModelNotFound(str(exc)) from None
    except ss.UnknownVersion as exc:
        raise VersionNotFound(str(exc)) from None
    except ss.StateConflict as exc:
        raise StateConflict(str(exc)) from None
    except ss.StateError as exc:
        raise InvalidInput(str(exc)) from None
    return describe(repo, repo.entries[name])


@router.put("/models/{name}/labels/{label}", response_model=ModelInfo, responses=ERRORS)
async def put_label(name: str, label: str, *, body: LabelBody, repo: RepositoryDep) -> ModelInfo:
    """Point `label` at a version: `stable`, `canary`, `shadow`, or a name clients ask for."""
    return await _edit(repo, name, lambda s: ss.with_label(s, label, body.version))


@router.delete("/models/{name}/labels/{label}", response_model=ModelInfo, responses=ERRORS)
async def delete_label(name: str, label: str, repo: RepositoryDep) -> ModelInfo:
    """Remove a label (removing `canary` also sets its share to 0)."""
    return await _edit(repo, name, lambda s: ss.without_label(s, label))


@router.put("/models/{name}/traffic", response_model=ModelInfo, responses=ERRORS)
async def put_traffic(name: str, body: TrafficBody, repo: RepositoryDep) -> ModelInfo:
    """The share of traffic (naming no version) that goes to the `canary` version."""
    return await _edit(repo, name, lambda s: ss.with_canary_share(s, body.canary))


@router.post("/models/{name}/rollback", response_model=ModelInfo, responses=ERRORS)
async def rollback(name: str, repo: RepositoryDep) -> ModelInfo:
    """At once: all traffic to `stable`, canary share 0, `shadow` cleared."""
    return await _edit(repo, name, ss.rolled_back)


@router.put("/default-model", response_model=ModelsResponse, responses=ERRORS)
async def put_default_model(body: DefaultModelBody, services: ServicesDep) -> ModelsResponse:
    """Choose the model answering requests that name none, for every replica and restart
    (TEXTCLS_DEFAULT_MODEL, when set, still overrides it)."""
    await services.repository.set_default(body.model)
    return await list_models(services)
