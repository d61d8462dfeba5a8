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
    MalformedBody,
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
    MalformedBody: 400,
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


# The Open Inference Protocol's routes answer errors as ``{"error": ...}``, an invalid request
# with 400 (its clients, tritonclient among them, read that shape).
V2_PREFIX = "/v2"
V2_STATUS = {422: 400}


def is_v2(path: str) -> bool:
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def v2_error_response(exc: ServiceError) -> OrjsonResponse:
    status = status_of(exc)
    return OrjsonResponse(
        {"error": exc.detail}, V2_STATUS.get(status, status), headers=headers_of(exc)
    )


async def service_error_handler(request: Request, exc: Exception) -> OrjsonResponse:
    """Registered for ServiceError in the app factory; also answers the body limit's 413."""
    assert isinstance(exc, ServiceError)
    if is_v2(request.scope.get("path", "")):
        return v2_error_response(exc)
    return error_response(exc)


def _is_json_type(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this type as JSON (subtype ``json`` or ``+json``)."""
    if not content_type:
        return False
    subtype = content_type.split(";", 1)[0].strip().lower().partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 body without the echoed ``input``, so no value sent can make it a 500.

    Echoing the input is what failed: Starlette's JSON refuses infinities, orjson refuses
    integers past 64 bits. The location and message say what is wrong without it.
    """
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    content_type = request.headers.get("content-type")
    if not _is_json_type(content_type):
        # FastAPI reads a body as JSON only under a JSON content type; anything else (curl -d
        # sends a form type) fails as "not an object", which never mentions the header.
        for error in errors:
            if tuple(error.get("loc", ())) == ("body",):
                error["msg"] = (
                    "the body must be a JSON object sent with 'Content-Type: application/json' "
                    f"(got {f'{content_type!r}' if content_type else 'no Content-Type'})"
                )
    # ASCII output: any character, even a lone surrogate in a key, is written as an escape.
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True).encode()
    return Response(body, status_code=422, media_type="application/json")


async def send_error(
    send: Send,
    status: int,
    detail: str,
    *,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    key: str = "detail",
) -> None:
    """Answer ``{"detail": detail}`` (or ``{key: detail}``) from pure ASGI middleware."""
    body = orjson.dumps({key: detail})
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


async def send_service_error(send: Send, exc: ServiceError, *, path: str = "") -> None:
    """``error_response(exc)`` (V2's for a V2 ``path``) from pure ASGI middleware."""
    extra = headers_of(exc) or {}
    headers = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    status = status_of(exc)
    if is_v2(path):
        status = V2_STATUS.get(status, status)
        await send_error(send, status, exc.detail, headers=headers, key="error")
    else:
        await send_error(send, status, exc.detail, headers=headers)
