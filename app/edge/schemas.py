"""API schemas (pydantic) with OpenAPI examples; separate from the database tables."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from app.config import MAX_TOP_K, MAX_VERSION

ModelVersion = Annotated[int, Field(strict=True, ge=1, le=MAX_VERSION)]
TopK = Annotated[int, Field(strict=True, ge=1, le=MAX_TOP_K)]
# A version label, as app.plane.serving_state.LABEL_RE (stable, canary, a name clients ask for).
VersionLabel = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Session = Annotated[StrictStr, Field(min_length=1, max_length=128)]
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
                {"text": "my card is lost", "session": "chat-81723"},
                {"text": "my card is lost", "version": "canary"},
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
    version: ModelVersion | VersionLabel | None = Field(
        None,
        description="This version of the model: a number, or a label (stable, canary, ...). "
        "Default: the model's traffic split (stable, and the canary share).",
    )
    session: Session | None = Field(
        None,
        description="A conversation id: every request of one session gets the same version "
        "while the split is unchanged. Without it the canary share is drawn per request.",
    )
    top_k: TopK | None = Field(
        None, description="Labels in each ranking (default 3, capped at the number of labels)."
    )
    threshold: Probability | None = Field(
        None, description="Fallback below this confidence (default: the model's own)."
    )
    margin: Probability | None = Field(
        None,
        description="Fallback when the top two confidences are closer than this (default: "
        "TEXTCLS_FALLBACK_MARGIN if set, else the model's own, chosen at training).",
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
    version: int = Field(description="The version that answered.")
    predictions: list[Prediction]


class VersionFailureInfo(BaseModel):
    version: int
    error: str
    at: str


class DriftSignal(BaseModel):
    value: float = Field(description="The distance (see the metrics guide for each signal's).")
    alert_level: float
    alerting: bool


class DriftInfo(BaseModel):
    """The drift window of one version."""

    window_texts: int = Field(description="Answered texts in the window now.")
    window: int = Field(description="The window's size (TEXTCLS_DRIFT_WINDOW).")
    min_texts: int = Field(description="Texts needed before the signals are measured.")
    signals: dict[str, DriftSignal] | None = Field(
        None, description="labels, confidence, fallback_rate, coverage; null until min_texts."
    )


class ModelInfo(BaseModel):
    """What is served for one model name, and what failed to load."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    ready: bool
    state: Literal["ready", "loading", "failed"] = Field(
        "ready",
        description="ready: a version serves; loading: not loaded yet; failed: no version "
        "loads (retried when its folder changes).",
    )
    default: bool = Field(False, description="Answers requests that name no model.")
    version: int | None = Field(
        description="The primary version: answers requests naming no version, outside the "
        "canary share."
    )
    versions_on_disk: list[int]
    versions_loaded: list[int] = Field(
        default_factory=list, description="The primary and every labelled version loaded."
    )
    labels: dict[str, int] = Field(
        default_factory=dict, description="Version labels: label -> version (serving.json)."
    )
    traffic: dict[str, Any] = Field(
        default_factory=dict,
        description="canary: the share of traffic for the canary version; the versions of "
        "stable, canary and shadow as routed here.",
    )
    serving_state_error: str | None = Field(
        None, description="Why serving.json could not be read (the last good state is used)."
    )
    loading: int | None = None
    device: str
    classes: list[str] = Field(
        default_factory=list, description="The primary version's classes, in output order."
    )
    threshold: float | None = None
    margin: float | None = Field(
        default=None,
        description="Near-tie margin chosen at training: a prediction whose top two "
        "confidences are closer falls back (0 for a model trained without one).",
    )
    metrics: dict[str, Any] = Field(default_factory=dict, description="Test metrics at training.")
    created_at: str | None = None
    loaded_at: str | None = None
    failures: list[VersionFailureInfo] = []
    batching: dict[str, Any] | None = Field(
        default=None,
        description="How the primary version is batched: measured ms_per_text, expensive, "
        "max_batch_size, max_batch_wait_ms, inference_threads, nice, and the fields "
        "TEXTCLS_MODEL_BATCHING overrode.",
    )
    drift: DriftInfo | None = Field(
        default=None,
        description="The primary version's live traffic against its training reference "
        "(absent for a version trained without one).",
    )


class SkippedVersion(BaseModel):
    name: str
    version: int
    reason: str = Field(
        description="Why the object store's version is not loaded: no completion marker yet "
        "(an upload in progress) or files that do not match it; tried again every poll."
    )


class ModelsResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    device: str
    default_model: str | None = Field(
        None,
        description="The model answering requests that name none; null when several are "
        "served and none is chosen (such requests get 422).",
    )
    default_model_source: Literal["setting", "repository", "only model"] | None = Field(
        None,
        description="setting: TEXTCLS_DEFAULT_MODEL; repository: recorded in the model "
        "folder's serving.json (textcls models default NAME); only model: the only one.",
    )
    models: list[ModelInfo]
    skipped: list[SkippedVersion] = Field(
        default_factory=list,
        description="Versions in the object store that this replica does not load (empty "
        "with a local model folder).",
    )


class HealthResponse(BaseModel):
    status: str = "ok"
    log: str = Field(
        "ok",
        description="The prediction log: ok, off, or 'degraded: ...' (database down, rows "
        "being lost); the service answers either way.",
    )


class ReadyResponse(BaseModel):
    ready: bool
    device: str
    models: dict[str, int] = Field(description="Model name -> version being served.")
    model_states: dict[str, Literal["ready", "loading", "failed"]] = Field(
        default_factory=dict,
        description="Each model found: ready, loading, or failed (no version loads). Not ready "
        "until every model found at start-up is ready or failed.",
    )
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
