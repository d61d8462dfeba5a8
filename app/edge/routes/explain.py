"""POST /explain: the prediction for one text and each token's contribution to it."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from app.edge.deps import caller_of, services_of
from app.edge.responses import OrjsonResponse
from app.edge.schemas import ModelVersion, Probability, RankedLabel, TopK
from app.errors import ModelNotReady
from app.plane.explainer import Explanation

router = APIRouter(tags=["explain"])

ERRORS = {
    404: {"description": "Unknown model or version; the message names what exists."},
    422: {"description": "Invalid request: empty or too long text, unknown label, types."},
    503: {"description": "Model not ready, or the batch queue is full (Retry-After)."},
}


class ExplainRequest(BaseModel):
    """One text to classify and explain; optionally which model, version and label."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {"text": "I still haven't received my new card"},
                {"text": "my card was stolen", "label": "lost_or_stolen_card"},
            ]
        },
    )

    text: StrictStr = Field(description="The text, as it would be sent to /classify.")
    model: StrictStr | None = Field(None, description="Model name (default as /classify).")
    version: ModelVersion | None = Field(None, description="Require this version of the model.")
    label: StrictStr | None = Field(
        None, description="Explain this label instead of the predicted one."
    )
    top_k: TopK | None = Field(None, description="Labels in the ranking (default 3).")
    threshold: Probability | None = Field(
        None, description="Fallback below this confidence (default: the model's own)."
    )


class TokenWeightOut(BaseModel):
    text: str
    start: int = Field(description="Offset of the token's first character (Unicode code points).")
    end: int = Field(description="Offset just past its last character.")
    weight: float = Field(
        description="Drop in the explained label's probability when this token is removed "
        "(negative: the token pulled away from the label)."
    )


class ExplainResponse(BaseModel):
    """The prediction, as /classify gives it, and the weight of each token of the text."""

    model_config = ConfigDict(protected_namespaces=())

    request_id: str | None = Field(description="This request's id (not a prediction log key).")
    model: str
    version: int
    label: str
    confidence: float
    fallback: bool
    ranking: list[RankedLabel]
    explained_label: str = Field(description="The label the weights explain.")
    explained_probability: float = Field(description="p(explained_label | text).")
    method: Literal["occlusion"]
    tokens: list[TokenWeightOut] = Field(description="In text order.")
    tokens_total: int = Field(description="Tokens in the text.")
    token_limit: int = Field(description="Tokens weighed at most (TEXTCLS_EXPLAIN_MAX_TOKENS).")
    truncated: bool = Field(description="True when tokens past the limit were not weighed.")


def explanation_body(result: Explanation, request_id: str | None) -> dict[str, Any]:
    """The /explain response document (ExplainResponse's shape), built without pydantic."""
    p = result.prediction
    return {
        "request_id": request_id,
        "model": result.model,
        "version": result.version,
        "label": p.label,
        "confidence": p.confidence,
        "fallback": p.fallback,
        "ranking": [{"label": lbl, "confidence": c} for lbl, c in p.ranking],
        "explained_label": result.label,
        "explained_probability": result.probability,
        "method": "occlusion",
        "tokens": [
            {"text": t.text, "start": t.start, "end": t.end, "weight": t.weight}
            for t in result.tokens
        ],
        "tokens_total": result.tokens_total,
        "token_limit": result.token_limit,
        "truncated": result.truncated,
    }


@router.post("/explain", response_model=ExplainResponse, responses=ERRORS)  # type: ignore[arg-type]
async def explain(body: ExplainRequest, request: Request) -> OrjsonResponse:
    """Classify `text` and weigh each token by occlusion; not written to the prediction log."""
    services = services_of(request)
    if services.explainer is None:
        raise ModelNotReady("the service is starting")
    _client, request_id = caller_of(request)
    (text,) = services.classifier.check_texts([body.text], single=True)
    result = await services.explainer.explain(
        text,
        model=body.model,
        version=body.version,
        label=body.label,
        top_k=body.top_k,
        threshold=body.threshold,
    )
    return OrjsonResponse(explanation_body(result, request_id))
