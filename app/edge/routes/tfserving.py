"""TensorFlow Serving's REST predict API, so its clients can switch without changes."""

from __future__ import annotations

from fastapi import APIRouter, Request

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
    413: {"description": "Body over TEXTCLS_MAX_BODY_BYTES."},
    503: {"description": "Model not ready, or the batch queue is full (Retry-After)."},
}


async def _predict(
    body: PredictRequest, request: Request, name: str, version: int | str | None
) -> OrjsonResponse:
    classifier = services_of(request).classifier
    texts = classifier.check_texts(_texts(body))
    _, _, probs = await classifier.probabilities(texts, name, version)
    key = "predictions" if body.instances is not None else "outputs"
    return OrjsonResponse({key: probs.tolist()})


@router.post("/{name}:predict", response_model=PredictResponse, responses=ERRORS)  # type: ignore[arg-type]
async def predict(name: str, body: PredictRequest, request: Request) -> OrjsonResponse:
    """`{"instances": [...]}` -> `{"predictions": [[probabilities]]}` (label order of /models)."""
    return await _predict(body, request, name, None)


@router.post(
    "/{name}/versions/{version}:predict",
    response_model=PredictResponse,
    responses=ERRORS,  # type: ignore[arg-type]
)
async def predict_version(
    name: str, version: int, body: PredictRequest, request: Request
) -> OrjsonResponse:
    """The same, pinned to one version (404 when it is not the one served)."""
    return await _predict(body, request, name, version)


@router.post(
    "/{name}/labels/{label}:predict",
    response_model=PredictResponse,
    responses=ERRORS,  # type: ignore[arg-type]
)
async def predict_label(
    name: str, label: str, body: PredictRequest, request: Request
) -> OrjsonResponse:
    """The same, by version label (TensorFlow Serving's `/labels/stable`, `/labels/canary`)."""
    return await _predict(body, request, name, label)
