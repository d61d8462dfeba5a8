"""HotRouteDispatch: a matching POST reaches its endpoint; refusals go to the app's handlers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.edge.dispatch import EndpointRoute, HotRouteDispatch, send_payload
from app.errors import ServiceError


class Refused(ServiceError):
    pass


async def endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    name = scope["path_params"]["name"]
    if name == "refused":
        raise Refused("no")
    if name == "broken":
        raise RuntimeError("bug")
    await send_payload(send, name.encode(), content_type=b"text/plain")


async def handler(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc), "path": request.url.path}, status_code=418)


def call(method: str, path: str) -> tuple[list[dict[str, Any]], list[str]]:
    route = EndpointRoute("/things/{name}/go", endpoint, name="go")
    passed: list[str] = []

    async def fallback(scope: dict[str, Any], receive: Any, send: Any) -> None:
        passed.append(scope["path"])

    app = SimpleNamespace(exception_handlers={ServiceError: handler})
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
             "query_string": b"", "app": app}  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(HotRouteDispatch(fallback, routes=[route])(scope, receive, send))
    if sent:
        assert scope["route"] is route
    return sent, passed


def test_a_matching_post_reaches_the_endpoint_with_its_path_parameters() -> None:
    sent, passed = call("POST", "/things/abc/go")
    assert not passed and sent[0]["status"] == 200 and sent[1]["body"] == b"abc"


def test_other_methods_and_paths_go_on_to_the_app() -> None:
    assert call("GET", "/things/abc/go") == ([], ["/things/abc/go"])
    assert call("POST", "/things/abc/stop") == ([], ["/things/abc/stop"])


def test_a_refusal_is_answered_by_the_apps_handler_for_its_class() -> None:
    sent, _ = call("POST", "/things/refused/go")
    assert sent[0]["status"] == 418
    assert b'"path":"/things/refused/go"' in sent[1]["body"]


def test_an_error_with_no_handler_propagates_to_the_server_error_middleware() -> None:
    with pytest.raises(RuntimeError, match="bug"):
        call("POST", "/things/broken/go")
