"""``grpc.health.v1.Health`` following the server's readiness (V2's server-ready)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

# The V2 inference service's name, the one health answers for beside the server's ("").
SERVICE = "inference.GRPCInferenceService"
HEALTH_POLL_S = 0.5


class ReadinessHealth(HealthServicer):  # type: ignore[misc]  # grpc_health has no types
    """SERVING while ``ready()`` holds, NOT_SERVING otherwise, for the server and SERVICE;
    NOT_SERVING for good once the drain begins (``enter_graceful_shutdown``).

    Check reads ``ready()`` at the call, so a probe right after the models load (or stop
    loading) never gets the last poll's answer; Watch streams follow ``follow``'s poll.
    """

    def __init__(self, ready: Callable[[], bool]) -> None:
        super().__init__()
        self._ready = ready

    async def update(self) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        status = serving if self._ready() else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.set("", status)  # a no-op once the drain has begun
        await self.set(SERVICE, status)

    async def follow(self) -> None:
        # Readiness changes rarely (start-up, a model that stops loading); polling is enough.
        while True:
            await asyncio.sleep(HEALTH_POLL_S)
            await self.update()

    async def Check(  # noqa: N802 (gRPC's method name)
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        await self.update()
        return await super().Check(request, context)
