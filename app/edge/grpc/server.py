"""The V2 gRPC service (``inference.GRPCInferenceService``) and gRPC health, in the app's loop.

A ``grpc.aio`` server started in the FastAPI lifespan, so it shares the event loop (and so the
batchers, whose futures resolve on that loop) with the HTTP routes: one process, one model
copy, one prediction log. Calls are authorised with the same API keys (``authorization:
Bearer KEY`` or ``x-api-key`` metadata) and rate-limited from the same token buckets as
HTTP. On SIGTERM it stops taking calls at once, lets those in flight finish (up to
``TEXTCLS_SHUTDOWN_GRACE_S``), then stops, while uvicorn drains HTTP alongside.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2_grpc
from opentelemetry.trace import Tracer

from app.config import Settings
from app.edge.auth import KeyStore
from app.edge.grpc.codec import code_of, decode_infer_request, encode_infer_response, peer_host
from app.edge.grpc.health import SERVICE, ReadinessHealth
from app.edge.grpc.proto import grpc_predict_v2_pb2 as pb
from app.edge.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from app.edge.rate_limit import Limiter
from app.edge.request_id import is_valid
from app.errors import (
    InvalidInput,
    ServiceError,
    Unauthorized,
)
from app.metrics import Metrics
from app.plane.request_ids import new_request_id
from app.plane.tracing import rpc_span
from app.plane.v2.protocol import InferenceProtocol

log = logging.getLogger(__name__)

Reply = TypeVar("Reply")


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The six V2 RPCs over InferenceProtocol; ServerLive and ServerReady are open (probes)."""

    def __init__(
        self,
        protocol: InferenceProtocol,
        *,
        keys: KeyStore,
        limiter: Limiter,
        metrics: Metrics,
        tracer: Tracer | None = None,
    ) -> None:
        self.protocol = protocol
        self.keys = keys
        self.limiter = limiter
        self.metrics = metrics
        self.tracer = tracer
        self._counts: dict[tuple[str, grpc.StatusCode], Any] = {}
        self._durations: dict[str, Any] = {}

    # -- the RPCs ---------------------------------------------------------------------
    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run("ServerLive", context, self._live, authorise=False)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run("ServerReady", context, self._ready, authorise=False)

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def ready(client: str) -> Any:
            return pb.ModelReadyResponse(
                ready=self.protocol.model_ready(request.name, request.version)
            )

        return await self._run("ModelReady", context, ready)

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def metadata(client: str) -> Any:
            return pb.ServerMetadataResponse(**self.protocol.server_metadata())

        return await self._run("ServerMetadata", context, metadata)

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def metadata(client: str) -> Any:
            meta = self.protocol.model_metadata(request.name, request.version)
            reply = pb.ModelMetadataResponse(
                name=meta.name, versions=meta.versions, platform=meta.platform
            )
            for t in meta.inputs:
                reply.inputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
            for t in meta.outputs:
                reply.outputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
            return reply

        return await self._run("ModelMetadata", context, metadata)

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def infer(client: str) -> Any:
            request_id = self._request_id(context, request.id)
            decoded = decode_infer_request(request)
            response = await self.protocol.infer(decoded, client, request_id)
            return encode_infer_response(response)

        return await self._run("ModelInfer", context, infer)

    # -- shared by every RPC ----------------------------------------------------------
    async def _live(self, client: str) -> Any:
        return pb.ServerLiveResponse(live=self.protocol.server_live())

    async def _ready(self, client: str) -> Any:
        return pb.ServerReadyResponse(ready=self.protocol.server_ready())

    async def _run(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        handler: Callable[[str], Awaitable[Reply]],
        *,
        authorise: bool = True,
    ) -> Reply:
        """Answer one call, in a server span of the caller's trace when tracing is on."""
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN  # until the handler answers or refuses
        span = rpc_span(self.tracer, f"{SERVICE}/{method}", context.invocation_metadata() or ())
        try:
            with span:
                client = await self._authorise(context) if authorise else ""
                reply = await handler(client)
            code = grpc.StatusCode.OK
            return reply
        except ServiceError as exc:
            code = code_of(exc)
            trailers: tuple[tuple[str, str], ...] = ()
            if exc.retry_after_s is not None:
                trailers = (("retry-after", str(exc.retry_after_s)),)
            await context.abort(code, exc.detail, trailers)
            raise AssertionError("context.abort returned") from None
        finally:
            self._record(method, code, time.perf_counter() - started)

    async def _authorise(self, context: grpc.aio.ServicerContext) -> str:
        """The client's name (rate-limited here), as the HTTP routes name it."""
        if self.keys.is_open:
            client = peer_host(context.peer())
        else:
            key = None
            for name, value in context.invocation_metadata() or ():
                if name == "authorization":
                    scheme, _, credentials = str(value).partition(" ")
                    if scheme.lower() == "bearer" and credentials.strip():
                        key = credentials.strip()
                    break
                if name == "x-api-key" and value:
                    key = str(value)
            if key is None:
                raise Unauthorized(
                    "an API key is required (metadata 'authorization: Bearer KEY' or 'x-api-key')"
                )
            found = self.keys.identify(key)
            if found is None:
                raise Unauthorized("the API key is not valid")
            client = found
        if self.limiter.enabled:
            await self.limiter.acquire(client)
        return client

    @staticmethod
    def _request_id(context: grpc.aio.ServicerContext, request_id: str) -> str:
        """``x-request-id`` metadata, else the request's ``id`` when it is a valid request id,
        else a new one; sent back as ``x-request-id`` initial metadata."""
        chosen = None
        for name, value in context.invocation_metadata() or ():
            if name == "x-request-id":
                if not is_valid(str(value)):
                    raise InvalidInput(
                        "x-request-id must be 1-64 characters of A-Z a-z 0-9 . _ : -"
                    )
                chosen = str(value)
        if chosen is None:
            chosen = request_id if request_id and is_valid(request_id) else new_request_id()
        return chosen

    def _record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        count = self._counts.get((method, code))
        if count is None:
            count = self._counts[(method, code)] = self.metrics.grpc_requests.labels(
                method, code.name
            )
        count.inc()
        duration = self._durations.get(method)
        if duration is None:
            duration = self._durations[method] = self.metrics.grpc_request_duration.labels(method)
        duration.observe(seconds)


def port_taken_message(host: str, port: int) -> str:
    return (
        f"cannot start the gRPC server on {host}:{port}: the port is in use or not available "
        f"(another textcls serve?). Set TEXTCLS_GRPC_PORT to a free port, or "
        f"TEXTCLS_GRPC_PORT=0 to turn gRPC off"
    )


class GrpcServer:
    """The gRPC server of one app: V2 inference plus ``grpc.health.v1.Health``."""

    def __init__(
        self,
        settings: Settings,
        *,
        protocol: InferenceProtocol,
        keys: KeyStore,
        limiter: Limiter,
        metrics: Metrics,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        limit = settings.max_body_bytes  # the same bound on a request as HTTP's
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ]
        )
        servicer = InferenceServicer(protocol, keys=keys, limiter=limiter, metrics=metrics)
        servicer.tracer = tracer
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self.health = ReadinessHealth(protocol.server_ready)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        self.port = 0
        self._health_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind and start; the port bound (``TEXTCLS_GRPC_PORT``)."""
        s = self.settings
        address = f"{s.grpc_host}:{s.grpc_port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError:  # grpcio raises where older versions returned 0
            self.port = 0
        if self.port == 0:
            raise OSError(port_taken_message(s.grpc_host, s.grpc_port))
        await self.health.update()
        await self._server.start()
        self._health_task = asyncio.create_task(self.health.follow(), name="grpc-health")
        log.info("gRPC (Open Inference Protocol V2, health) listening on %s", address)
        return self.port

    def begin_shutdown(self) -> None:
        """Stop taking calls and drain (from the SIGTERM handler, on the loop's thread)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())

    async def stop(self) -> None:
        """Drain (calls in flight finish, up to the grace period), then stop."""
        self.begin_shutdown()
        assert self._stopping is not None
        await self._stopping

    async def _stop(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        await self.health.enter_graceful_shutdown()
        await self._server.stop(self.settings.shutdown_grace_s)
        log.info("gRPC server stopped")


def drain_on_sigterm(server: GrpcServer) -> None:
    """Begin the gRPC drain as soon as SIGTERM arrives, alongside uvicorn's HTTP drain.

    uvicorn holds SIGTERM while it serves (and restores the previous handler afterwards);
    this handler runs first and then hands the signal to uvicorn's. Only in the main thread,
    where signal handlers live (a server run in a test thread drains at lifespan shutdown).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(server.begin_shutdown)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, handle)
