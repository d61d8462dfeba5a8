"""Which routes need an API key and a rate limit: the ``include_router`` arguments per group.

Which routes need what:
- ``CLIENT_ROUTES`` (/feedback, /models, TF Serving's predict): an API key when keys are
  configured, then the client's token bucket (``app.edge.authorize``). /classify calls
  ``authorize`` itself and takes these groups' OpenAPI description (``openapi_route``).
- ``METRICS_ROUTES`` (/metrics): ``TEXTCLS_METRICS_API_KEY`` when set, else open, since
  Prometheus scrapes from inside the network.
- ``OPEN_ROUTES`` (/healthz, /readyz): always open, for the orchestrator's probes. /docs and
  /openapi.json are open too: the API's shape is no secret and clients generate from it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends

from app.config import Settings
from app.edge.auth import AUTH_RESPONSES, KeyStore, authenticate_metrics
from app.edge.authorize import authorized_client
from app.edge.openapi import VALIDATION_RESPONSES
from app.edge.rate_limit import RATE_LIMIT_RESPONSES
from app.edge.request_id import REQUEST_ID_RESPONSES, request_id

_ID = [Depends(request_id)]  # declares the X-Request-ID header in OpenAPI on every route

CLIENT_ROUTES: dict[str, Any] = {
    "dependencies": [*_ID, Depends(authorized_client)],
    "responses": {
        **REQUEST_ID_RESPONSES,
        **AUTH_RESPONSES,
        **RATE_LIMIT_RESPONSES,
        **VALIDATION_RESPONSES,
    },
}
# An open service without a rate limit: no key to check and no bucket to take from, so the
# client routes skip the authorize dependency (FastAPI's dependency solving costs more than the
# rest of a hot route) and leave 401/429 out of the API description, since they cannot happen.
OPEN_CLIENT_ROUTES: dict[str, Any] = {
    "dependencies": _ID,
    "responses": {**REQUEST_ID_RESPONSES, **VALIDATION_RESPONSES},
}
METRICS_ROUTES: dict[str, Any] = {
    "dependencies": [*_ID, Depends(authenticate_metrics)],
    "responses": {**REQUEST_ID_RESPONSES, **AUTH_RESPONSES, **VALIDATION_RESPONSES},
}
OPEN_ROUTES: dict[str, Any] = {
    "dependencies": _ID,
    "responses": {**REQUEST_ID_RESPONSES, **VALIDATION_RESPONSES},
}


def client_routes(settings: Settings) -> dict[str, Any]:
    """``include_router`` arguments for the client routes under these settings."""
    limited = settings.rate_limit_per_s > 0 or bool(settings.rate_limits)
    if KeyStore.from_settings(settings).is_open and not limited:
        return OPEN_CLIENT_ROUTES
    return CLIENT_ROUTES
