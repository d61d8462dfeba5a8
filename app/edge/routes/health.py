"""Liveness (/healthz) and readiness (/readyz) probes."""

from __future__ import annotations

from fastapi import APIRouter

from app.edge.deps import ServicesDep
from app.edge.responses import OrjsonResponse
from app.edge.schemas import HealthResponse, ReadyResponse
from app.plane.readiness import readiness_details

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz(services: ServicesDep) -> OrjsonResponse:
    """The process answers; ``log`` says whether the prediction log keeps up."""
    writer = services.log_writer
    return OrjsonResponse({"status": "ok", "log": "off" if writer is None else writer.health})


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    responses={
        503: {
            "model": ReadyResponse,
            "description": "A model found at start-up is still loading, or none serves.",
        }
    },
)
async def readyz(services: ServicesDep) -> OrjsonResponse:
    """Ready once every model found at start-up is loaded and warmed up (or failed for good)
    and one serves; 503 before that. Lists each model's state."""
    repo = services.repository
    served = {
        name: e.serving.model.version for name, e in repo.entries.items() if e.serving is not None
    }
    ready = repo.ready
    states = {name: e.status for name, e in sorted(repo.entries.items())}
    body = {
        "ready": ready,
        "device": services.device.kind,
        "models": served,
        "model_states": states,
    }
    body.update(readiness_details(services))
    return OrjsonResponse(body, status_code=200 if ready else 503)
