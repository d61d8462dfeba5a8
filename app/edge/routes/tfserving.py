"""TensorFlow Serving's REST predict API, so its clients can switch without changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.config import MAX_VERSION
from app.edge.deps import services_of
from app.edge.responses import OrjsonResponse
from app.edge.schemas import PredictRequest, PredictResponse
from app.errors import InvalidInput
from training.artifact import INPUT_KEY, SIGNATURE_KEY

router = APIRouter(prefix="/v1/models", tags=["tensorflow-serving"])


def _texts(body: PredictRequest) -> list[object]:
    """The texts of a row ('instances') or columnar ('inputs') request."""
    if body.signature_name not in (None, SIGNATURE_KEY):
        raise InvalidInput(f"unknown signature_name {body.signature_name!r}; use {SIGNATURE_KEY!r}")
    if body.instances is not None:
        texts: list[object] = []
        for i, row in enumerate(body.instances):
            if isinstance(row, dict):
                if set(row) != {INPUT_KEY}:
                    raise InvalidInput(f"instance {i} must be a string or {{{INPUT_KEY!r}: ...}}")
                texts.append(row[INPUT_KEY])
            else:
                texts.append(row)
        return texts
    inputs = body.inputs
    if isinstance(inputs, dict):
        if set(inputs) != {INPUT_KEY}:
            raise InvalidInput(f"'inputs' must name only {INPUT_KEY!r}")
        inputs = inputs[INPUT_KEY]
    return [inputs] if isinstance(inputs, str) else list(inputs or [])


ERRORS = {
    404: {"description": "Unknown model or version; the message names what exists."},
    503: {"description": "Model not ready, or the batch queue is full (Retry-After)."},
}


# TF Serving reads the body as JSON whatever the Content-Type says, and its clients (and
# `requests.post(data=...)`) send none or a form type; FastAPI parses JSON only under a JSON
# type, so the body is parsed here, with the same 422 for what is not a valid request.
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    }
}


async def _body(request: Request) -> PredictRequest:
    try:
        return PredictRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


async def _predict(request: Request, *, name: str, version: int | str | None) -> OrjsonResponse:
    body = await _body(request)
    classifier = services_of(request).classifier
    texts = classifier.check_texts(_texts(body))
    _, _, probs = await classifier.probabilities(texts, name, version)
    key = "predictions" if body.instances is not None else "outputs"
    return OrjsonResponse({key: probs.tolist()})


@router.post(
    "/{name}:predict",
    response_model=PredictResponse,
    responses=ERRORS,  # type: ignore[arg-type]
    openapi_extra=BODY,
)
async def predict(name: str, request: Request) -> OrjsonResponse:
    """`{"instances": [...]}` -> `{"predictions": [[probabilities]]}` (label order of /models)."""
    return await _predict(request, name=name, version=None)


@router.post(
    "/{name}/versions/{version}:predict",
    response_model=PredictResponse,
    responses=ERRORS,  # type: ignore[arg-type]
    openapi_extra=BODY,
)
async def predict_version(
    name: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], request: Request
) -> OrjsonResponse:
    """The same, pinned to one version (404 when it is not the one served)."""
    return await _predict(request, name=name, version=version)


@router.post(
    "/{name}/labels/{label}:predict",
    response_model=PredictResponse,
    responses=ERRORS,  # type: ignore[arg-type]
    openapi_extra=BODY,
)
async def predict_label(name: str, label: str, request: Request) -> OrjsonResponse:
    """The same, by version label (TensorFlow Serving's `/labels/stable`, `/labels/canary`)."""
    return await _predict(request, name=name, version=label)
