"""The app factory: routes, the one ordered middleware list, and the lifespan that starts the
models, the inference threads and the prediction log writer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from app.config import Settings, load_settings
from app.edge.access import METRICS_ROUTES, OPEN_ROUTES, client_routes
from app.edge.admin_auth import admin_key_digest
from app.edge.auth import KeyStore, metrics_key_digest, warn_if_open
from app.edge.body_limit import BodyLimitMiddleware
from app.edge.classify_fast_path import ClassifyFastPath
from app.edge.errors import service_error_handler, validation_error_handler
from app.edge.http_metrics import HttpMetricsMiddleware
from app.edge.json_guard import JsonGuard
from app.edge.rate_limit import RateLimiter
from app.edge.request_id import HEADER, RequestIdMiddleware
from app.edge.responses import OrjsonResponse
from app.edge.routes import admin, classify, feedback, health, metrics, models, tfserving
from app.errors import ServiceError
from app.metrics import Metrics
from app.plane.classifier import Classifier
from app.plane.device import configure_device, configure_threads
from app.plane.repository import ModelRepository
from app.plane.services import Services

log = logging.getLogger(__name__)

# Routes that take an API key and a rate limit (when configured); see app.edge.access.
CLIENT_ROUTERS = (classify.router, feedback.router, models.router, tfserving.router)


def _middleware(
    settings: Settings,
    *,
    keys: KeyStore,
    limiter: RateLimiter,
    metrics: Metrics,
    services: Callable[[], Services | None],
) -> list[Middleware]:
    """Every middleware, outermost first: each sees what those below it answer."""
    # The client routers' own routes, for labelling requests answered before routing (a 413).
    templates = [route for router in CLIENT_ROUTERS for route in router.routes]
    stack = [
        # Counts and times every answer, the 400s and 413s of the layers below included.
        Middleware(HttpMetricsMiddleware, metrics=metrics, routes=templates),
        # An id on every answer; refuses a bad X-Request-ID before anything reads the body.
        Middleware(RequestIdMiddleware),
    ]
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "X-API-Key", HEADER, "Content-Type"],
                expose_headers=[HEADER, "Retry-After"],
                max_age=600,
            )
        )
    stack += [
        Middleware(
            ClassifyFastPath,
            settings=settings,
            keys=keys,
            limiter=limiter,
            route=classify.router.routes[0],
            services=services,
        ),
        # 413 for bodies over TEXTCLS_MAX_BODY_BYTES; bounds what the JSON guard reads.
        Middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        # 422 for JSON that Python parses but JSON and Unicode do not allow.
        Middleware(JsonGuard),
    ]
    return stack


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment). Nothing heavy starts here.

    A bad key or rate-limit setting raises ConfigError here, at start-up.
    """
    settings = settings or load_settings()
    app_metrics = Metrics()
    keys = KeyStore.from_settings(settings)
    limiter = RateLimiter.from_settings(settings, keys)
    warn_if_open(keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_threads(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
        device = configure_device(settings.device)
        repository = ModelRepository(settings, device, app_metrics)
        log_writer = None
        if settings.log_predictions:
            from app.predlog.writer import PredictionLogWriter

            log_writer = PredictionLogWriter(settings, metrics=app_metrics)
            log_writer.start()
        classifier = Classifier(settings, repository, log_writer.submit if log_writer else None)
        app.state.services = Services(
            settings, app_metrics, device, repository, classifier, log_writer
        )
        repository.start()
        try:
            yield
        finally:
            await repository.stop()
            if log_writer is not None:
                log_writer.stop(settings.shutdown_grace_s)
            app_metrics.close()

    app = FastAPI(
        title="textcls",
        summary="Text classification with dynamic batching, hot model reload and a prediction log.",
        version="0.1.0",
        lifespan=lifespan,
        middleware=_middleware(
            settings,
            keys=keys,
            limiter=limiter,
            metrics=app_metrics,
            services=lambda: getattr(app.state, "services", None),
        ),
        default_response_class=OrjsonResponse,
        # Off unless asked: with no provider configured it still costs checks per request.
        telemetry=None if settings.otel else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.keys = keys
    app.state.rate_limiter = limiter
    app.state.metrics_key_digest = metrics_key_digest(settings)
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    routes_security = client_routes(settings)
    for router in CLIENT_ROUTERS:
        app.include_router(router, **routes_security)
    app.state.admin_key_digest = admin_key_digest(settings)
    app.include_router(admin.router, **OPEN_ROUTES)  # the admin key, checked by the router
    app.include_router(health.router, **OPEN_ROUTES)
    app.include_router(metrics.router, **METRICS_ROUTES)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and ``textcls serve``: settings from ``TEXTCLS_*``."""
    return create_app(load_settings())
