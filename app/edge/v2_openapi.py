"""OpenAPI descriptions of the V2 REST routes: answer models, the request schema, statuses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.edge.request_id import HEADER, PATTERN
from app.edge.v2_codec import BINARY_CONTENT_TYPE


class V2Error(BaseModel):
    error: str


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


# The request body's schema, inline (no model: FastAPI registers only models it reads).
_PARAMETERS = {"type": "object", "additionalProperties": True}
INFER_REQUEST_SCHEMA: dict[str, Any] = {
    "title": "InferRequest",
    "description": "A V2 inference request (JSON form; the binary form appends raw tensors).",
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": _PARAMETERS,
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": {"type": "string", "example": "text"},
                    "shape": {"type": "array", "items": {"type": "integer"}, "example": [2]},
                    "datatype": {"type": "string", "example": "BYTES"},
                    "parameters": _PARAMETERS,
                    "data": {"type": "array", "example": ["refund please", "where is my card"]},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": _PARAMETERS},
            },
        },
    },
}


class OutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferResponseDoc(BaseModel):
    model_config = {"protected_namespaces": ()}

    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Any]
    outputs: list[OutputTensor]


def _error(description: str) -> dict[str, Any]:
    return {"model": V2Error, "description": description}


def _one_of(description: str, *models: str) -> dict[str, Any]:
    refs = [{"$ref": f"#/components/schemas/{m}"} for m in models]
    return {
        "description": description,
        "content": {"application/json": {"schema": {"anyOf": refs}}},
    }


Responses = dict[int | str, dict[str, Any]]

# Every route: an X-Request-ID that is not valid is refused before routing, in the service's
# common {"detail"} shape (400). Infer bodies are parsed by orjson, which refuses lone
# surrogates, NaN and infinities itself (400, V2's shape).
BAD_ID = "An invalid X-Request-ID header (detail), or"
OPEN: Responses = {400: _one_of(f"{BAD_ID} not ready (ready: false).", "Ready", "ErrorMessage")}
KEYED: Responses = {
    400: _one_of(f"{BAD_ID} an invalid request.", "V2Error", "ErrorMessage"),
    401: _error("No API key, or one that matches no client."),
    429: _error("Over the client's rate limit (Retry-After)."),
}
MODEL: Responses = {
    **KEYED,
    404: _error("Unknown model or version."),
    503: _error("The model is not ready yet (Retry-After when the queue is full)."),
}
READY: Responses = {
    **MODEL,
    400: _one_of(
        f"{BAD_ID} known but not answering now (ready: false).", "ModelReady", "ErrorMessage"
    ),
}
INFER: Responses = {
    **MODEL,
    200: {
        "description": "The outputs; with binary outputs, a JSON header of "
        "Inference-Header-Content-Length bytes followed by the raw tensors.",
        "content": {BINARY_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    },
    413: _error("Body over TEXTCLS_MAX_BODY_BYTES."),
    500: _error("The model failed on this batch."),
}
# Declared here rather than as a dependency (the request-id middleware does the work, and a
# dependency would cost every call its solving).
ID_HEADER = {
    "parameters": [
        {
            "name": HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": PATTERN},
            "description": "Your id for this request (else one is generated); echoed back, "
            "logged, and used by /feedback. Invalid -> 400.",
        }
    ]
}
INFER_EXTRA = {
    **ID_HEADER,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": INFER_REQUEST_SCHEMA},
            BINARY_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    },
}
