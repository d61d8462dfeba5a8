"""API schemas (pydantic) with OpenAPI examples; separate from the database tables."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from app.config import MAX_TOP_K, MAX_VERSION

ModelVersion = Annotated[int, Field(strict=True, ge=1, le=MAX_VERSION)]
TopK = Annotated[int, Field(strict=True, ge=1, le=MAX_TOP_K)]
Probability = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]


class ClassifyRequest(BaseModel):
    """One text or a list of texts, with optional model, version, ranking size and threshold."""

    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {"text": "I still haven't received my new card"},
                {"texts": ["where is my order?", "I was charged twice"], "top_k": 2},
                {"text": "has my refund been processed?", "model": "example", "version": 1},
            ]
        },
    )

    text: StrictStr | None = Field(None, description="One text; give this or 'texts'.")
    texts: list[StrictStr] | None = Field(
        None, description="Several texts, answered in the same order; give this or 'text'."
    )
    model: StrictStr | None = Field(
        None, description="Model name (default: TEXTCLS_DEFAULT_MODEL or the only model)."
    )
    version: ModelVersion | None = Field(None, description="Require this version of the model.")
    top_k: TopK | None = Field(
        None, description="Labels in each ranking (default 3, capped at the number of labels)."
    )
    threshold: Probability | None = Field(
        None, description="Fallback below this confidence (default: the model's own)."
    )

    @model_validator(mode="after")
    def _one_of_text_texts(self) -> ClassifyRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        return self


class RankedLabel(BaseModel):
    label: str
    confidence: float


class Prediction(BaseModel):
    """The top label of one text, its confidence and whether to hand it to a person."""

    label: str
    confidence: float
    fallback: bool = Field(
        description="True when the top confidence is under the threshold or the top two are "
        "closer than TEXTCLS_FALLBACK_MARGIN."
    )
    ranking: list[RankedLabel]


class ClassifyResponse(BaseModel):
    """Predictions in the order of the request's texts."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "request_id": "9f1c2a4e6b8d4f0a9c3e5b7d1f2a4c6e",
                    "model": "example",
                    "version": 1,
                    "predictions": [
                        {
                            "label": "lost_card",
                            "confidence": 0.91,
                            "fallback": False,
                            "ranking": [
                                {"label": "lost_card", "confidence": 0.91},
                                {"label": "account_locked", "confidence": 0.05},
                                {"label": "update_details", "confidence": 0.02},
                            ],
                        }
                    ],
                }
            ]
        },
    )

    request_id: str = Field(description="Also the key of these rows in the prediction log.")
    model: str
    version: int
    predictions: list[Prediction]


class VersionFailureInfo(BaseModel):
    version: int
    error: str
    at: str


class ModelInfo(BaseModel):
    """What is served for one model name, and what failed to load."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    ready: bool
    version: int | None = Field(description="The version answering requests.")
    versions_on_disk: list[int]
    loading: int | None = None
    device: str
    labels: list[str] = []
    threshold: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict, description="Test metrics at training.")
    created_at: str | None = None
    loaded_at: str | None = None
    failures: list[VersionFailureInfo] = []


class ModelsResponse(BaseModel):
    device: str
    models: list[ModelInfo]


class HealthResponse(BaseModel):
    status: str = "ok"


class ReadyResponse(BaseModel):
    ready: bool
    device: str
    models: dict[str, int] = Field(description="Model name -> version being served.")
    reason: str | None = Field(None, description="Why not ready (e.g. no model directory).")
    logging: str = Field(
        "off", description="Prediction log: 'ok', 'off', or what is wrong with its database."
    )
    degraded: list[str] = Field(
        default_factory=list,
        description="Parts running degraded while the service still answers, e.g. 'logging' "
        "when the database is unreachable (rows are kept, then spilled to a file).",
    )


class PredictRequest(BaseModel):
    """TensorFlow Serving's REST predict body: row ('instances') or columnar ('inputs')."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"instances": ["refund please", "my card is lost"]},
                {"instances": [{"text": "refund please"}]},
                {"inputs": {"text": ["refund please"]}},
            ]
        },
    )

    signature_name: StrictStr | None = None
    instances: list[StrictStr | dict[str, StrictStr]] | None = None
    inputs: list[StrictStr] | dict[str, list[StrictStr] | StrictStr] | StrictStr | None = None

    @model_validator(mode="after")
    def _one_of(self) -> PredictRequest:
        if (self.instances is None) == (self.inputs is None):
            raise ValueError("give exactly one of 'instances' or 'inputs'")
        return self


class PredictResponse(BaseModel):
    predictions: list[list[float]] | None = None
    outputs: list[list[float]] | None = None
