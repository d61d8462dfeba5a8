"""Route dependencies as ``Annotated`` aliases; all async, so none costs a threadpool hop.

TF Serving's predict reads the same objects with the plain functions ``services_of`` and
``caller_of`` instead (FastAPI's dependency solving costs more per request than the rest of a
hot route); /classify, a plain Starlette route, reads them from the ASGI scope itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.edge.auth import peer_client
from app.errors import ModelNotReady
from app.metrics import Metrics
from app.plane.repository import ModelRepository
from app.plane.services import Services


def services_of(request: Request) -> Services:
    """The app's services; ModelNotReady before its lifespan has started them."""
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise ModelNotReady("the service is starting")
    return services


def caller_of(request: Request) -> tuple[str | None, str | None]:
    """(client name, request id) as the auth and request-id middleware left them.

    An open service without a rate limit runs no auth dependency (app.edge.access.client_routes):
    its client is the peer's address, as the auth dependency would have set it.
    """
    state = request.scope.get("state") or {}
    client = state.get("client")
    if client is None:
        client = peer_client(request.scope)
    return client, state.get("request_id")


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_repository(services: ServicesDep) -> ModelRepository:
    return services.repository


async def get_metrics(services: ServicesDep) -> Metrics:
    return services.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
RepositoryDep = Annotated[ModelRepository, Depends(get_repository)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
