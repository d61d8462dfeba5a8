"""OpenAPI declarations of error answers: every error body is ``{"detail": ...}``."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field
from starlette.types import Send


class ErrorMessage(BaseModel):
    """What every refusal the service itself makes looks like."""

    detail: str


class ValidationErrorMessage(BaseModel):
    """A 422: the service's own message, or FastAPI's list of field errors."""

    detail: str | list[dict[str, Any]] = Field(
        description="A message, or one entry per invalid field (loc, msg, type)."
    )


VALIDATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ValidationErrorMessage,
        "description": "Invalid request: fields, types, limits, or not valid Unicode.",
    },
}


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
