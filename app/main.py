"""The app factory: routes, the one ordered middleware list, and the lifespan that starts the
models, the inference threads and the prediction log writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry import TelemetryConfig
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute

from app.config import Settings, load_settings
from app.edge.access import METRICS_ROUTES, OPEN_ROUTES, client_routes
from app.edge.admin_auth import admin_key_digest
from app.edge.auth import KeyStore, metrics_key_digest, warn_if_open
from app.edge.body_guard import BodyGuard
from app.edge.dispatch import EndpointRoute, HotRouteDispatch
from app.edge.errors import service_error_handler, validation_error_handler
from app.edge.http_metrics import HttpMetricsMiddleware
from app.edge.rate_limit import limiter_from_settings
from app.edge.request_id import HEADER, RequestIdMiddleware
from app.edge.responses import OrjsonResponse
from app.edge.review_page import mount_review_page
from app.edge.routes import (
    admin,
    admin_logs,
    classify,
    explain,
    feedback,
    health,
    intents,
    metrics,
    models,
    review,
    tfserving,
    v2,
)
from app.edge.routes.classify import openapi_route
from app.edge.routes.docs import docs_routes
from app.errors import ServiceError
from app.metrics import Metrics
from app.plane.classifier import Classifier
from app.plane.device import configure_device, configure_threads
from app.plane.explainer import Explainer
from app.plane.repository import ModelRepository
from app.plane.services import Services
from app.plane.tracing import Tracing
from app.plane.v2.protocol import InferenceProtocol

if TYPE_CHECKING:
    from app.edge.grpc.server import GrpcServer

log = logging.getLogger(__name__)

# Routes that take an API key and a rate limit (when configured), besides /classify.
CLIENT_ROUTERS = (
    explain.router,
    feedback.router,
    models.router,
    review.router,
    intents.router,
    tfserving.router,
)


def _middleware(
    settings: Settings,
    *,
    metrics: Metrics,
    classify_route: EndpointRoute,
    v2_routes: list[EndpointRoute],
    docs: list[BaseRoute],
) -> list[Middleware]:
    """Every middleware, outermost first: each sees what those below it answer."""
    # The client routes, for labelling requests answered before routing (a 413), and the
    # docs routes, which FastAPI's router does not label.
    routers = (*CLIENT_ROUTERS, v2.router)
    templates = [
        classify_route,
        *v2_routes,
        *(route for r in routers for route in r.routes),
        *docs,
    ]
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
    # Reads each body once: 413 over TEXTCLS_MAX_BODY_BYTES, 422 for JSON that lies.
    stack.append(Middleware(BodyGuard, max_body_bytes=settings.max_body_bytes))
    # POST /classify and V2 infer to their endpoints without the router's per-request work.
    stack.append(Middleware(HotRouteDispatch, routes=[classify_route, *v2_routes]))
    return stack


def _openapi(app: FastAPI, documented: list[BaseRoute]) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with ``documented`` routes (answered by plain Starlette routes) first."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=[*documented, *app.routes],
            )
        return app.openapi_schema

    return openapi


def _lifespan(
    settings: Settings, app_metrics: Metrics, tracing: Tracing
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the device, model repository, log writer and classifier; stop them in reverse."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_threads(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
        device = configure_device(settings.device)
        tracing.start()
        repository = ModelRepository(settings, device, app_metrics)
        repository.versions.tracer = tracing.tracer
        log_writer = None
        if settings.log_predictions:
            from app.predlog.writer import PredictionLogWriter

            log_writer = PredictionLogWriter(settings, app_metrics, tracing.tracer)
            log_writer.start()
        classifier = Classifier(settings, repository, log_writer.submit if log_writer else None)
        app.state.services = Services(
            settings=settings,
            metrics=app_metrics,
            device=device,
            repository=repository,
            classifier=classifier,
            log_writer=log_writer,
            explainer=Explainer(settings, repository, app_metrics),
        )
        follower = None
        if settings.model_store is not None:
            from app.plane.store.follow import follow, start_mirror

            mirror = await start_mirror(settings, app_metrics)
            repository.versions.store = mirror.store  # admin edits: conditional writes there
            app.state.services.mirror = mirror  # /models shows the versions it skips
            interval = settings.poll_interval_s
            if interval > 0:
                follower = asyncio.create_task(follow(mirror, repository, interval))
        repository.start()
        grpc_server = await start_grpc(app, settings, app_metrics)
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop()  # drained first: its calls need the batchers
            if follower is not None:
                follower.cancel()
            await repository.stop()
            if log_writer is not None:
                log_writer.stop(settings.shutdown_grace_s)
            await app.state.rate_limiter.aclose()
            tracing.shutdown()
            app_metrics.close()

    return lifespan


def _add_routes(
    app: FastAPI,
    settings: Settings,
    *,
    classify_route: EndpointRoute,
    v2_routes: list[EndpointRoute],
    docs: list[BaseRoute],
) -> None:
    """The routes, in the order the router matches them: the busiest first."""
    routes_security = client_routes(settings)
    # First in the router, so the busiest route is matched first.
    app.router.routes.insert(0, classify_route)
    app.router.routes[1:1] = v2_routes  # V2 inference, matched as early
    documented = [openapi_route(routes_security), *v2.openapi_routes()]
    app.openapi = _openapi(app, documented)  # type: ignore[method-assign]
    for router in CLIENT_ROUTERS:
        app.include_router(router, **routes_security)
    # V2 routes authorise themselves, to answer every refusal in V2's shape.
    app.include_router(v2.router)
    app.include_router(admin.router, **OPEN_ROUTES)  # the admin key, checked by the router
    app.include_router(admin_logs.router, **OPEN_ROUTES)
    app.include_router(health.router, **OPEN_ROUTES)
    app.include_router(metrics.router, **METRICS_ROUTES)
    app.router.routes.extend(docs)
    mount_review_page(app)  # static files; the data they load goes through the client routes


def _telemetry(settings: Settings, tracing: Tracing) -> TelemetryConfig | None:
    """FastAPI's own OpenTelemetry: the HTTP server spans of textcls' traces (their provider
    only) when OTLP is configured; else the global providers' spans and metrics if
    TEXTCLS_OTEL asks; else off (with no provider configured it still costs checks per
    request)."""
    if tracing.provider is not None:
        return {
            "tracer_provider": tracing.provider,
            "tracing": True,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
        }
    return None if settings.otel else {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment). Nothing heavy starts here.

    A bad key or rate-limit setting raises ConfigError here, at start-up.
    """
    settings = settings or load_settings()
    app_metrics = Metrics()
    keys = KeyStore.from_settings(settings)
    limiter = limiter_from_settings(settings, keys, app_metrics)
    warn_if_open(keys)
    tracing = Tracing.from_environment()

    lifespan = _lifespan(settings, app_metrics, tracing)
    classify_route = classify.route()
    docs = docs_routes()
    v2_routes = v2.infer_routes()
    app = FastAPI(
        title="textcls",
        summary="Text classification with dynamic batching, hot model reload and a prediction log.",
        version="0.1.0",
        lifespan=lifespan,
        middleware=_middleware(
            settings,
            metrics=app_metrics,
            classify_route=classify_route,
            v2_routes=v2_routes,
            docs=docs,
        ),
        # /docs, /redoc and /openapi.json are app.edge.routes.docs: assets served locally.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=OrjsonResponse,
        telemetry=_telemetry(settings, tracing),
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.tracing = tracing
    app.state.keys = keys
    app.state.rate_limiter = limiter
    app.state.metrics_key_digest = metrics_key_digest(settings)
    app.state.admin_key_digest = admin_key_digest(settings)
    # The Open Inference Protocol's data plane, for the V2 REST routes and the gRPC server.
    app.state.inference_protocol = InferenceProtocol(lambda: getattr(app.state, "services", None))
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    _add_routes(app, settings, classify_route=classify_route, v2_routes=v2_routes, docs=docs)
    return app


async def start_grpc(app: FastAPI, settings: Settings, metrics: Metrics) -> GrpcServer | None:
    """The V2 gRPC server on ``TEXTCLS_GRPC_PORT`` (None when it is 0): same keys, rate
    limits, classifier and log as HTTP, on this event loop."""
    if not settings.grpc_port:
        return None
    from app.edge.grpc.server import GrpcServer, drain_on_sigterm

    server = GrpcServer(
        settings,
        protocol=app.state.inference_protocol,
        keys=app.state.keys,
        limiter=app.state.rate_limiter,
        metrics=metrics,
        tracer=app.state.tracing.tracer,
    )
    await server.start()
    drain_on_sigterm(server)
    return server


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and ``textcls serve``: settings from ``TEXTCLS_*``."""
    return create_app(load_settings())
