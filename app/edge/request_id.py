"""X-Request-ID: taken from the client when valid, else generated; echoed on every response.

A request whose ``X-Request-ID`` is present but invalid is refused with 400 rather than
silently given another id: the id is the key a client later sends to ``/feedback``, so
replacing it would break that link without the client knowing. Valid ids are 1-64 characters
of ``A-Z a-z 0-9 . _ : -`` (64 is the prediction log's column width).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.edge.errors import send_error
from app.edge.openapi import ErrorMessage
from app.plane.request_ids import new_request_id

HEADER = "X-Request-ID"
_HEADER_KEY = b"x-request-id"
MAX_LENGTH = 64
PATTERN = r"^[A-Za-z0-9._:\-]{1,64}$"
_VALID = re.compile(PATTERN)


def is_valid(value: str) -> bool:
    return _VALID.fullmatch(value) is not None


class RequestIdMiddleware:
    """Pure ASGI middleware: sets ``request.state.request_id`` and the response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope["headers"] if k == _HEADER_KEY]
        problem = None
        if not values:
            request_id = new_request_id()
        elif len(values) > 1:
            request_id, problem = new_request_id(), f"send one {HEADER} header, not several"
        else:
            request_id = values[0].decode("latin-1")
            if not is_valid(request_id):
                request_id = new_request_id()
                problem = f"{HEADER} must be 1-{MAX_LENGTH} characters of A-Z a-z 0-9 . _ : -"
        echoed = (_HEADER_KEY, request_id.encode("latin-1"))
        if problem is not None:
            await send_error(send, 400, problem, headers=(echoed,))
            return
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != _HEADER_KEY]
                message["headers"] = [*headers, echoed]
            await send(message)

        await self.app(scope, receive, send_with_id)


async def request_id(
    request: Request,
    x_request_id: Annotated[
        str | None,
        Header(
            alias=HEADER,
            pattern=PATTERN,
            description="Your id for this request (else one is generated); echoed back, "
            "logged, and used by /feedback. Invalid -> 400.",
        ),
    ] = None,
) -> str:
    """The request's id as the middleware settled it (the header is declared for OpenAPI)."""
    return str(request.state.request_id)


RequestId = Annotated[str, Depends(request_id)]

REQUEST_ID_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorMessage,
        "description": f"Invalid {HEADER} header, or a body that is not UTF-8 JSON.",
    },
}
