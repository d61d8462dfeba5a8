"""The one place a ServiceError becomes an HTTP answer ``{"detail": ...}``."""

from __future__ import annotations

from starlette.requests import Request

from app.api.responses import OrjsonResponse
from app.errors import ServiceError


async def service_error_handler(request: Request, exc: Exception) -> OrjsonResponse:
    """Registered for ServiceError; also used by middleware that answers before routing."""
    assert isinstance(exc, ServiceError)
    return OrjsonResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
