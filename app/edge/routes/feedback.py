"""POST /feedback: the correct label for one logged prediction."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from app.config import MAX_TEXTS_PER_REQUEST
from app.edge.deps import ServicesDep
from app.errors import InvalidInput, PredictionLogOff
from app.plane.services import Services
from app.predlog.feedback import Unlogged, record_feedback
from training.artifact import ArtifactError, read_metadata, version_path

router = APIRouter(tags=["feedback"])

FLUSH_WAIT_S = 2.0


class FeedbackRequest(BaseModel):
    """Which prediction (the response's ``request_id`` and the text's ``index``) and its label."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"request_id": "3f2c9a7e0b1d4e5f8a6b7c8d9e0f1a2b", "index": 0, "label": "lost_card"}
            ]
        },
    )

    request_id: StrictStr = Field(min_length=1, max_length=64)
    index: StrictInt = Field(
        ge=0,
        lt=MAX_TEXTS_PER_REQUEST,
        description="Position of the text in the request (0 for 'text').",
    )
    label: StrictStr = Field(min_length=1, max_length=255, description="The correct label.")
    text: StrictStr | None = Field(
        None,
        min_length=1,
        max_length=1_000_000,
        description="The text, optional: stored with the correction, which keeps it as a "
        "training example even when the log did not keep the prediction (sampled out).",
    )


class FeedbackResponse(BaseModel):
    """The stored correction; ``correct`` tells whether the model had it right."""

    model_config = ConfigDict(protected_namespaces=())

    id: int
    request_id: str
    index: int
    label: str
    predicted_label: str | None = Field(description="None when the prediction was not logged.")
    correct: bool | None
    model: str | None
    version: int | None
    created_at: datetime
    source: str


ERRORS = {
    404: {"description": "No logged prediction with this request_id and index."},
    409: {
        "description": "The prediction was not logged (TEXTCLS_LOG_SAMPLE_RATE); send its "
        "'text' to keep the correction as a training example."
    },
    422: {"description": "Invalid body, or a label the prediction's model does not have."},
    503: {"description": "The prediction log is off or its database is unavailable."},
}


def unlogged_target(services: Services, sample_rate: float) -> Unlogged:
    """Where a correction of a sampled-out prediction goes: the default (or only) model."""
    entries = services.repository.entries
    name = services.settings.default_model or (next(iter(entries)) if len(entries) == 1 else None)
    entry = entries.get(name) if name is not None else None
    if entry is None or entry.serving is None:
        return Unlogged(sample_rate=sample_rate, model=name)
    return Unlogged(sample_rate=sample_rate, model=name, labels=list(entry.serving.model.labels))


def labels_of(services: Services, model: str, version: int) -> list[str] | None:
    """Labels of ``model`` ``version``: the loaded one if it is served, else its metadata.json."""
    entry = services.repository.entries.get(model)
    serving = entry.loaded(version) if entry is not None else None
    if serving is not None:
        return list(serving.model.labels)
    try:
        return read_metadata(version_path(services.settings.model_dir, model, version)).labels
    except ArtifactError:
        return None  # the version is gone: the label cannot be checked


@router.post("/feedback", status_code=201, response_model=FeedbackResponse, responses=ERRORS)  # type: ignore[arg-type]
def post_feedback(body: FeedbackRequest, services: ServicesDep) -> FeedbackResponse:
    """Record the correct label of a logged prediction; a later correction wins."""
    writer = services.log_writer
    if writer is None or writer.engine is None:
        raise PredictionLogOff(
            "feedback needs the prediction log; TEXTCLS_LOG_PREDICTIONS is false"
        )
    if body.text is not None and len(body.text) > services.settings.max_text_chars:
        raise InvalidInput(
            f"text is longer than TEXTCLS_MAX_TEXT_CHARS ({services.settings.max_text_chars})"
        )
    stored = record_feedback(
        writer.engine,
        body.request_id,
        body.index,
        label=body.label,
        labels_for=partial(labels_of, services),
        flush_log=partial(writer.flush, FLUSH_WAIT_S),
        text=body.text,
        unlogged=unlogged_target(services, rate) if (rate := writer.sampler.rate) < 1 else None,
    )
    correct = {True: "true", False: "false", None: "unknown"}[stored.correct]
    services.metrics.feedback.labels(stored.model or "", correct).inc()
    return FeedbackResponse(
        id=stored.id,
        request_id=stored.request_id,
        index=stored.index,
        label=stored.label,
        predicted_label=stored.predicted_label,
        correct=stored.correct,
        model=stored.model,
        version=stored.version,
        created_at=stored.created_at,
        source=stored.source,
    )
