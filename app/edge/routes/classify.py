"""POST /classify: one text or a batch, answered through the dynamic batcher."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.edge.classify_fast_path import classification_body
from app.edge.deps import caller_of, services_of
from app.edge.responses import OrjsonResponse
from app.edge.schemas import ClassifyRequest, ClassifyResponse

router = APIRouter(tags=["classify"])

ERRORS = {
    404: {"description": "Unknown model or version; the message names what exists."},
    413: {"description": "Body over TEXTCLS_MAX_BODY_BYTES."},
    422: {"description": "Invalid request: text/texts, limits, types, unknown fields."},
    503: {"description": "Model not ready, or the batch queue is full (Retry-After)."},
}


@router.post("/classify", response_model=ClassifyResponse, responses=ERRORS)  # type: ignore[arg-type]
async def classify(body: ClassifyRequest, request: Request) -> OrjsonResponse:
    """Classify `text` or `texts`; predictions come back in input order."""
    classifier = services_of(request).classifier
    client, request_id = caller_of(request)
    texts = classifier.check_texts([body.text] if body.texts is None else body.texts)
    result = await classifier.classify(
        texts,
        body.model,
        body.version,
        body.top_k,
        body.threshold,
        client,
        request_id,
        session=body.session,
    )
    # Built by hand and rendered by orjson: response_model validation costs more than
    # the model call at high request rates. The schema above still documents the shape.
    # Well-formed requests are answered by app.edge.classify_fast_path before reaching here.
    return OrjsonResponse(classification_body(result))
