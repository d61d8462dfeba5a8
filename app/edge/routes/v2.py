"""The Open Inference Protocol (V2) over REST: health, metadata and inference under /v2.

Each route authorises itself (``authorize``: the same keys and token buckets as /classify)
so that every refusal, 401 and 429 included, comes in V2's ``{"error": ...}`` shape; the
work is ``app.plane.v2.InferenceProtocol``'s, the wire format ``app.edge.v2_codec``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from app.edge.auth import header
from app.edge.authorize import authorize
from app.edge.body_guard import BODY
from app.edge.dispatch import EndpointRoute, read_body, send_payload
from app.edge.responses import OrjsonResponse
from app.edge.v2_codec import BINARY_CONTENT_TYPE, HEADER_LENGTH, decode_request, encode_response
from app.edge.v2_openapi import (
    ID_HEADER,
    INFER,
    INFER_EXTRA,
    KEYED,
    MODEL,
    OPEN,
    READY,
    InferResponseDoc,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
)
from app.plane.v2.protocol import InferenceProtocol

router = APIRouter(prefix="/v2", tags=["open-inference-protocol"])
HEADER_LENGTH_KEY = HEADER_LENGTH.encode()  # ASGI header names: lower-case bytes
BINARY_TYPE = BINARY_CONTENT_TYPE.encode()


def _protocol(request: Request) -> InferenceProtocol:
    protocol: InferenceProtocol = request.app.state.inference_protocol
    return protocol


@router.get("/health/live", response_model=Ready, responses=OPEN, openapi_extra=ID_HEADER)
async def live(request: Request) -> OrjsonResponse:
    """The server answers (open, like /healthz)."""
    return OrjsonResponse({"ready": _protocol(request).server_live()})


@router.get("/health/ready", response_model=Ready, responses=OPEN, openapi_extra=ID_HEADER)
async def ready(request: Request) -> OrjsonResponse:
    """200 once a model is warmed up, 400 before (V2: 4xx means false). Open, like /readyz."""
    is_ready = _protocol(request).server_ready()
    return OrjsonResponse({"ready": is_ready}, status_code=200 if is_ready else 400)


@router.get("", response_model=ServerMetadata, responses=KEYED, openapi_extra=ID_HEADER)
async def server_metadata(request: Request) -> OrjsonResponse:
    """The server's name, version and protocol extensions."""
    await authorize(request.scope)
    return OrjsonResponse(_protocol(request).server_metadata())


async def _model_metadata(request: Request, name: str, version: str | None) -> OrjsonResponse:
    await authorize(request.scope)
    return OrjsonResponse(_protocol(request).model_metadata(name, version).as_dict())


async def _model_ready(request: Request, name: str, version: str | None) -> OrjsonResponse:
    await authorize(request.scope)
    is_ready = _protocol(request).model_ready(name, version)
    return OrjsonResponse({"name": name, "ready": is_ready}, status_code=200 if is_ready else 400)


async def infer(scope: Scope, receive: Receive, send: Send) -> None:
    """POST /v2/models/{name}[/versions/{version}]/infer: the one implementation of infer, an
    ASGI endpoint as /classify's is (FastAPI's routing and dependency solving would cost more
    than the call itself). The body guard's bytes in, V2's outputs out."""
    client = await authorize(scope)
    body = scope.get(BODY)
    if body is None:  # an app built without the body guard in front (create_app has it)
        body = await read_body(receive)
    params = scope["path_params"]
    decoded = decode_request(
        body,
        header(scope, HEADER_LENGTH_KEY),
        model=params["name"],
        version=params.get("version", ""),
    )
    protocol: InferenceProtocol = scope["app"].state.inference_protocol
    result = await protocol.infer(decoded, client, scope["state"].get("request_id"))
    payload, length = encode_response(result)
    if length is None:
        await send_payload(send, payload)
    else:
        length_header = (HEADER_LENGTH_KEY, str(length).encode())
        await send_payload(send, payload, content_type=BINARY_TYPE, headers=(length_header,))


INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


def infer_routes() -> list[EndpointRoute]:
    """The routes that answer V2 inference (create_app puts them first in its router, and hands
    them to ``HotRouteDispatch``)."""
    return [EndpointRoute(path, infer, name="v2_infer") for path in INFER_PATHS]


async def _documented_infer(name: str) -> InferResponseDoc:
    raise AssertionError("only describes infer in OpenAPI; infer() answers it")


async def _documented_infer_version(name: str, version: str) -> InferResponseDoc:
    raise AssertionError("only describes infer in OpenAPI; infer() answers it")


def openapi_routes() -> list[BaseRoute]:
    """Infer's OpenAPI description (never routed: ``infer_routes()`` answer infer)."""
    docs = (
        "Classify the `text` tensor: JSON tensors, or binary ones (tritonclient.http's default).",
        "The same, pinned to one version (404 when it is not the one served).",
    )
    endpoints: tuple[Callable[..., Any], ...] = (_documented_infer, _documented_infer_version)
    return [
        APIRoute(
            path,
            endpoint,
            methods=["POST"],
            name=endpoint.__name__.removeprefix("_documented_"),
            description=doc,
            response_model=InferResponseDoc,
            responses=INFER,
            openapi_extra=INFER_EXTRA,
            tags=["open-inference-protocol"],
        )
        for path, endpoint, doc in zip(INFER_PATHS, endpoints, docs, strict=True)
    ]


@router.get(
    "/models/{name}",
    response_model=ModelMetadata,
    responses=MODEL,
    openapi_extra=ID_HEADER,
)
async def model_metadata(request: Request, name: str) -> OrjsonResponse:
    """The served version, the input `text` and the outputs of a model."""
    return await _model_metadata(request, name, None)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelMetadata,
    responses=MODEL,
    openapi_extra=ID_HEADER,
)
async def model_version_metadata(request: Request, name: str, version: str) -> OrjsonResponse:
    """The same, for one version (404 when it is not the one served)."""
    return await _model_metadata(request, name, version)


@router.get(
    "/models/{name}/ready",
    response_model=ModelReady,
    responses=READY,
    openapi_extra=ID_HEADER,
)
async def model_ready(request: Request, name: str) -> OrjsonResponse:
    """200 when the model answers now, 400 when not (yet)."""
    return await _model_ready(request, name, None)


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ModelReady,
    responses=READY,
    openapi_extra=ID_HEADER,
)
async def model_version_ready(request: Request, name: str, version: str) -> OrjsonResponse:
    """200 when that version answers now, 400 when not."""
    return await _model_ready(request, name, version)
