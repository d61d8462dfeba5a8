"""The hot POST endpoints as plain ASGI callables, and the middleware that reaches them first.

/classify and V2 inference are answered by ASGI endpoints (no FastAPI dependency solving, no
``Request``, no response class), registered as ``EndpointRoute``s so the router, OpenAPI and
the HTTP metrics know them. ``HotRouteDispatch``, the innermost middleware, hands a POST that
one of them matches straight to its endpoint, past ExceptionMiddleware's per-request
``Request``, the router's matching of every route and the dependency exit stack; a refusal is
answered by the app's own exception handler, looked up as ExceptionMiddleware does, so errors
read as they do through the router (V2's ``{"error": ...}`` included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send


class EndpointRoute(Route):
    """A POST route answered by an ASGI callable; like FastAPI's routes it leaves itself in
    ``scope["route"]``, which the HTTP metrics label requests by."""

    def __init__(self, path: str, endpoint: ASGIApp, *, name: str) -> None:
        super().__init__(path, endpoint, methods=["POST"], name=name)
        self.app = endpoint  # an ASGI callable; Route would wrap a function as request -> response

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


async def send_payload(
    send: Send,
    payload: bytes,
    *,
    content_type: bytes = b"application/json",
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """A 200 answer with ``payload``, straight to ``send`` (no response object)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def read_body(receive: Receive) -> bytes:
    """The body, for an app built without the body guard in front (create_app always has it)."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def exception_handler(app: Any, exc: Exception) -> Any:
    """The app's exception handler for ``exc`` (by its class's MRO), as ExceptionMiddleware
    picks it; None for an error the app leaves to ServerErrorMiddleware (a 500)."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


class HotRouteDispatch:
    """Innermost middleware: a POST that one of ``routes`` matches goes straight to its endpoint.

    The routes stay registered in the router too (other methods, OpenAPI, apps built without
    this middleware) and answer the same there; what is skipped is per-request work they do not
    need: the router's matching over every route, ExceptionMiddleware's per-request ``Request``
    and the exit stack, which cost these hot routes more than their own work
    (docs/results/speed.md).
    """

    def __init__(self, app: ASGIApp, *, routes: Sequence[EndpointRoute]) -> None:
        self.app = app
        # A path without parameters (/classify) is found by a dict lookup, not Route.matches,
        # which builds path-parameter dicts (a few µs a request in situ).
        self.exact = {r.path: r for r in routes if not r.param_convertors}
        self.routes = tuple(r for r in routes if r.param_convertors)

    def _route(self, scope: Scope) -> EndpointRoute | None:
        """The route that answers this request here (its path parameters put in ``scope``)."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        exact = self.exact.get(scope["path"])
        if exact is not None and not scope.get("root_path"):
            scope["route"] = exact
            return exact
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        if "fastapi.telemetry" in scope:  # tracing on: FastAPI's server span names no route
            _name_server_span(route.path)
        try:
            await route.app(scope, receive, send)
        except Exception as exc:
            handler = exception_handler(scope["app"], exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive, send), exc)
            await response(scope, receive, send)


def _name_server_span(path: str) -> None:
    """Name the request's span by its route, as FastAPI's router does for its own routes."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"POST {path}")
        span.set_attribute("http.route", path)
