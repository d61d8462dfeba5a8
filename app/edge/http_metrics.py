"""Pure ASGI middleware counting requests and timing them by route template."""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics

UNMATCHED = "<unmatched>"
NOT_MEASURED = frozenset({"/metrics", "/healthz", "/readyz"})
MAX_CACHED = 1024


class HttpMetricsMiddleware:
    """Records ``http_requests_total`` and ``http_request_duration_seconds``.

    The route label is the matched route's template (``/models/{name}``), never the raw
    path, so label cardinality stays fixed; unmatched paths share one label. ``routes`` lets
    a request answered before routing (a 413 from the body limit) still get its template.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: list[BaseRoute] | None = None):
        self.app = app
        self.metrics = metrics
        self.routes = routes or []
        # Label children looked up once: ``labels()`` takes a lock and builds a key each call.
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        root_path = scope.get("root_path", "")  # a mount below changes it in the shared scope

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route") or self._match({**scope, "root_path": root_path})
            template = getattr(route, "path", None) or UNMATCHED
            if template not in NOT_MEASURED:
                self._record(
                    template,
                    scope["method"],
                    status=status,
                    seconds=time.perf_counter() - started,
                )

    def _record(self, template: str, method: str, *, status: int, seconds: float) -> None:
        count = self._counts.get((template, method, status))
        if count is None:
            count = self.metrics.http_requests.labels(template, method, str(status))
            if len(self._counts) < MAX_CACHED:  # methods come from clients: stay bounded
                self._counts[(template, method, status)] = count
        count.inc()
        duration = self._durations.get(template)
        if duration is None:
            duration = self._durations[template] = self.metrics.http_request_duration.labels(
                template
            )
        duration.observe(seconds)

    def _match(self, scope: Scope) -> BaseRoute | None:
        # Only for requests the router never saw; a normal request has scope["route"].
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return route
        return None
