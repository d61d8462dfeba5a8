"""The one place a domain error becomes an HTTP answer ``{"detail": ...}``: status and headers.

Routes and FastAPI dependencies raise ``app.errors`` exceptions and the handler registered in
the app factory answers them; middleware that answers before routing (the body guard, request
ids) calls ``send_service_error`` or ``send_error``, which render the same body.
"""

from __future__ import annotations

import json

import orjson
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from app.edge.responses import OrjsonResponse
from app.errors import (
    Conflict,
    Forbidden,
    InferenceFailed,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    Unauthorized,
    Unavailable,
)

# By kind; a subclass takes its nearest listed ancestor's status.
STATUS: dict[type[ServiceError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Unavailable: 503,
    PayloadTooLarge: 413,
    Unauthorized: 401,
    Forbidden: 403,
    Conflict: 409,
    RateLimited: 429,
    InferenceFailed: 500,
}
WWW_AUTHENTICATE = 'Bearer realm="textcls"'


def status_of(exc: ServiceError) -> int:
    """The HTTP status for ``exc``: its kind's, 500 for a kind this table does not know."""
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def headers_of(exc: ServiceError) -> dict[str, str] | None:
    """``Retry-After`` when retrying helps, ``WWW-Authenticate`` on a 401."""
    headers: dict[str, str] = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return headers or None


def error_response(exc: ServiceError) -> OrjsonResponse:
    return OrjsonResponse({"detail": exc.detail}, status_of(exc), headers=headers_of(exc))


async def service_error_handler(request: Request, exc: Exception) -> OrjsonResponse:
    """Registered for ServiceError in the app factory."""
    assert isinstance(exc, ServiceError)
    return error_response(exc)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 body without the echoed ``input``, so no value sent can make it a 500.

    Echoing the input is what failed: Starlette's JSON refuses infinities, orjson refuses
    integers past 64 bits. The location and message say what is wrong without it.
    """
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    # ASCII output: any character, even a lone surrogate in a key, is written as an escape.
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True).encode()
    return Response(body, status_code=422, media_type="application/json")


async def send_error(
    send: Send, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Answer ``{"detail": detail}`` from pure ASGI middleware, before any route runs."""
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_service_error(send: Send, exc: ServiceError) -> None:
    """``error_response(exc)`` from pure ASGI middleware."""
    extra = headers_of(exc) or {}
    headers = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    await send_error(send, status_of(exc), exc.detail, headers)
