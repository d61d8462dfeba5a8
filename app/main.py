"""The FastAPI app factory; models, threads and the log writer start in its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.error_handler import service_error_handler
from app.api.responses import OrjsonResponse
from app.api.routes import classify, feedback, health, metrics, models, tfserving
from app.auth import KeyStore
from app.body_limit import BodyLimitMiddleware
from app.classifier import Classifier
from app.classify_fast_path import ClassifyFastPath
from app.config import Settings, load_settings
from app.device import configure_device, configure_threads
from app.errors import ServiceError
from app.http_metrics import HttpMetricsMiddleware
from app.metrics import Metrics
from app.rate_limit import RateLimiter
from app.repository import ModelRepository
from app.security import METRICS_ROUTES, OPEN_ROUTES, client_routes, install_security
from app.services import Services

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment). Nothing heavy starts here."""
    settings = settings or load_settings()
    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_threads(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
        device = configure_device(settings.device)
        repository = ModelRepository(settings, device, app_metrics)
        log_writer = None
        if settings.log_predictions:
            from app.log_writer import PredictionLogWriter

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
        default_response_class=OrjsonResponse,
        # Off unless asked: with no provider configured it still costs checks per request.
        telemetry=None if settings.otel else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.add_exception_handler(ServiceError, service_error_handler)
    client_routers = (classify.router, feedback.router, models.router, tfserving.router)

    def inner_middleware(keys: KeyStore, limiter: RateLimiter) -> None:
        app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
        app.add_middleware(
            ClassifyFastPath,
            settings=settings,
            keys=keys,
            limiter=limiter,
            route=classify.router.routes[0],
            services=lambda: getattr(app.state, "services", None),
        )

    # Added last = outermost: the metrics see the 413s the body limit answers.
    install_security(app, settings, inner_middleware)  # keys, rate limits, request ids, CORS
    # The routers' own routes (their paths include the prefix), for labelling requests
    # answered before routing, such as a 413 from the body limit.
    templates = [route for router in client_routers for route in router.routes]
    app.add_middleware(HttpMetricsMiddleware, metrics=app_metrics, routes=templates)
    routes_security = client_routes(settings)
    for router in client_routers:
        app.include_router(router, **routes_security)
    app.include_router(health.router, **OPEN_ROUTES)
    app.include_router(metrics.router, **METRICS_ROUTES)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and ``textcls serve``: settings from ``TEXTCLS_*``."""
    return create_app(load_settings())
