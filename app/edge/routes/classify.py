"""POST /classify: one text or a batch, answered through the dynamic batcher.

The one implementation of /classify, an ``EndpointRoute`` (app.edge.dispatch) whose endpoint
is an ASGI callable: no FastAPI dependency solving, no ``Request`` object and no response
class on the way, which together cost more event-loop CPU than batching, ranking and logging
(bench/request_cost.py). It takes the body the body guard read (``scope[BODY]``), validates it
with ``ClassifyRequest.model_validate_json``, calls ``authorize`` (the same function the other
routes' FastAPI dependency calls) and the ``Classifier``, and writes the orjson answer. Every
refusal is raised as an ``app.errors`` exception or a ``RequestValidationError`` and answered
by the app's exception handlers, as for any route. Being no FastAPI route, it is described in
OpenAPI by ``openapi_route``, built by FastAPI from the same pydantic models.

A body that fails the fast validation is parsed again the way FastAPI parses a JSON body
(content type, ``json.loads``, then validation), so refusals read as they do on every other
route, in the same order: an unreadable body first, then the API key and rate limit, then
invalid fields.
"""

from __future__ import annotations

import email.message
import json
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from app.edge.auth import header
from app.edge.authorize import authorize
from app.edge.body_guard import BODY
from app.edge.dispatch import EndpointRoute, read_body, send_payload
from app.edge.schemas import ClassifyRequest, ClassifyResponse
from app.errors import MalformedBody, ModelNotReady
from app.plane.classifier import Classification
from app.plane.services import Services

PATH = "/classify"
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown model or version; the message names what exists."},
    422: {"description": "Invalid request: text/texts, limits, types, unknown fields."},
    503: {"description": "Model not ready, or the batch queue is full (Retry-After)."},
}
_NO_BODY = object()


def classification_body(result: Classification) -> dict[str, Any]:
    """The /classify response document (ClassifyResponse's shape), built without pydantic."""
    return {
        "request_id": result.request_id,
        "model": result.model,
        "version": result.version,
        "predictions": [
            {
                "label": p.label,
                "confidence": p.confidence,
                "fallback": p.fallback,
                "ranking": [{"label": lbl, "confidence": c} for lbl, c in p.ranking],
            }
            for p in result.predictions
        ],
    }


def _is_plain_json(content_type: str | None) -> bool:
    return (
        content_type is not None
        and content_type.partition(";")[0].strip().lower() == "application/json"
    )


def _decode_as_fastapi(body: bytes, content_type: str | None) -> object:
    """What FastAPI hands its validation for a JSON body parameter (strict content type)."""
    if not body:
        return _NO_BODY
    if content_type:
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        if message.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):
            try:
                return json.loads(body)
            except json.JSONDecodeError as exc:
                raise RequestValidationError(
                    [
                        {
                            "type": "json_invalid",
                            "loc": ("body", exc.pos),
                            "msg": "JSON decode error",
                            "input": {},
                            "ctx": {"error": exc.msg},
                        }
                    ]
                ) from exc
            except UnicodeDecodeError as exc:
                raise MalformedBody(
                    f"the body is not UTF-8 (byte 0x{body[exc.start]:02x} at position "
                    f"{exc.start}): send JSON encoded as UTF-8"
                ) from exc
            except (ValueError, RecursionError) as exc:  # nested too deep
                raise MalformedBody(f"the body cannot be read as JSON: {exc}") from exc
    return body  # not JSON: validation says the body is not an object


def _validate_as_fastapi(document: object) -> ClassifyRequest:
    if document is _NO_BODY:
        errors: list[Any] = [
            {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        ]
        raise RequestValidationError(errors)
    try:
        return ClassifyRequest.model_validate(document, from_attributes=True)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


async def classify(scope: Scope, receive: Receive, send: Send) -> None:
    """Classify `text` or `texts`; predictions come back in input order."""
    body = scope.get(BODY)
    if body is None:
        body = await read_body(receive)
    content_type = header(scope, b"content-type")
    request: ClassifyRequest | None = None
    if _is_plain_json(content_type):
        try:
            request = ClassifyRequest.model_validate_json(body)
        except ValidationError:
            pass
    document = _decode_as_fastapi(body, content_type) if request is None else None
    client = await authorize(scope)
    if request is None:
        request = _validate_as_fastapi(document)
    services: Services | None = getattr(scope["app"].state, "services", None)
    if services is None:
        raise ModelNotReady("the service is starting")
    classifier = services.classifier
    if request.texts is None:
        texts = classifier.check_texts([request.text], single=True)
    else:
        texts = classifier.check_texts(request.texts)
    result = await classifier.classify(
        texts,
        model=request.model,
        version=request.version,
        top_k=request.top_k,
        threshold=request.threshold,
        margin=request.margin,
        client=client,
        request_id=scope["state"].get("request_id"),
        session=request.session,
    )
    await send_payload(send, orjson.dumps(classification_body(result)))


def route() -> EndpointRoute:
    """POST /classify, answered by ``classify`` (through ``HotRouteDispatch`` in create_app)."""
    return EndpointRoute(PATH, classify, name="classify")


async def _documented(body: ClassifyRequest) -> ClassifyResponse:
    """Classify `text` or `texts`; predictions come back in input order."""
    raise AssertionError("only describes /classify in OpenAPI; classify() answers it")


def openapi_route(security: dict[str, Any]) -> APIRoute:
    """/classify's OpenAPI description: FastAPI's own, from the request and response models and
    the client routes' ``security`` (``include_router`` arguments: declared headers, schemes,
    error answers). Never routed: ``route()`` answers /classify."""
    return APIRoute(
        PATH,
        _documented,
        methods=["POST"],
        name="classify",
        response_model=ClassifyResponse,
        tags=["classify"],
        dependencies=security["dependencies"],
        responses={**security["responses"], **ERRORS},
    )
