"""Wires API keys, rate limits, request ids, CORS and the JSON guard into create_app.

Which routes need what:
- ``CLIENT_ROUTES`` (/classify, /feedback, /models, TF Serving's predict): an API key when
  keys are configured, then the client's token bucket.
- ``METRICS_ROUTES`` (/metrics): ``TEXTCLS_METRICS_API_KEY`` when set, else open, since
  Prometheus scrapes from inside the network.
- ``OPEN_ROUTES`` (/healthz, /readyz): always open, for the orchestrator's probes. /docs and
  /openapi.json are open too: the API's shape is no secret and clients generate from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.middleware.cors import CORSMiddleware

from app.auth import (
    AUTH_RESPONSES,
    KeyStore,
    authenticate_metrics,
    metrics_key_digest,
    warn_if_open,
)
from app.config import Settings
from app.error_responses import VALIDATION_RESPONSES
from app.json_guard import JsonGuard, validation_error_handler
from app.rate_limit import RATE_LIMIT_RESPONSES, RateLimiter, enforce_rate_limit
from app.request_id import HEADER, REQUEST_ID_RESPONSES, RequestIdMiddleware, request_id

_ID = [Depends(request_id)]  # declares the X-Request-ID header in OpenAPI on every route

CLIENT_ROUTES: dict[str, Any] = {
    "dependencies": [*_ID, Depends(enforce_rate_limit)],
    "responses": {
        **REQUEST_ID_RESPONSES,
        **AUTH_RESPONSES,
        **RATE_LIMIT_RESPONSES,
        **VALIDATION_RESPONSES,
    },
}
# An open service without a rate limit: no key to check and no bucket to take from, so the
# client routes skip both dependencies (FastAPI's dependency solving is the largest cost of a
# /classify call) and leave 401/429 out of the API description, since they cannot happen.
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


def check_security_settings(settings: Settings) -> None:
    """Raise ConfigError now for bad key or rate-limit settings (``textcls serve`` calls it)."""
    RateLimiter.from_settings(settings, KeyStore.from_settings(settings))


def install_security(
    app: FastAPI, settings: Settings, inner: Callable[[KeyStore, RateLimiter], None]
) -> None:
    """Read the keys (a bad key setting fails here, at start-up) and add the middleware.

    From the inside out: the JSON guard, whatever ``inner`` adds (given the keys and rate
    limiter; create_app adds the body limit and the /classify fast path), CORS, request ids.
    Call it before adding the HTTP-metrics middleware, so the metrics still count the 400s
    for bad request ids; request ids wrap the body limit's 413s.
    """
    keys = KeyStore.from_settings(settings)
    app.state.keys = keys
    limiter = RateLimiter.from_settings(settings, keys)
    app.state.rate_limiter = limiter
    app.state.metrics_key_digest = metrics_key_digest(settings)
    warn_if_open(keys)
    # The guard reads the whole body, so it sits inside the body limit, which bounds it.
    app.add_middleware(JsonGuard)
    inner(keys, limiter)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", HEADER, "Content-Type"],
            expose_headers=[HEADER, "Retry-After"],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)
