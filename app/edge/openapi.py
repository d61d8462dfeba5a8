"""OpenAPI declarations of error answers: every error body is ``{"detail": ...}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorMessage(BaseModel):
    """What every refusal the service itself makes looks like."""

    detail: str


class ValidationErrorMessage(BaseModel):
    """A 422: the service's own message, or FastAPI's list of field errors."""

    detail: str | list[dict[str, Any]] = Field(
        description="A message, or one entry per invalid field (loc, msg, type)."
    )


# Every route group declares these: the body limit (app.edge.body_guard) guards every route
# that reads a body, before routing.
VALIDATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorMessage, "description": "Body over TEXTCLS_MAX_BODY_BYTES."},
    422: {
        "model": ValidationErrorMessage,
        "description": "Invalid request: fields, types, limits, or not valid Unicode.",
    },
}
