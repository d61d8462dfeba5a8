"""GET /review/...: the review page's data, read from the prediction log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.edge.deps import ServicesDep
from app.edge.routes.feedback import labels_of
from app.errors import InvalidInput, LogStoreUnavailable, PredictionLogOff
from app.plane.services import Services
from app.predlog.review import (
    LogFilter,
    QueueItem,
    label_feedback,
    logged_versions,
    review_queue,
)
from app.predlog.teach_order import teach_queue

router = APIRouter(prefix="/review", tags=["review"])

ERRORS = {
    422: {"description": "Invalid filter: types, ranges, or 'since' not before 'until'."},
    503: {"description": "The prediction log is off or its database is unavailable."},
}
T = TypeVar("T")

ModelQ = Annotated[str | None, Query(min_length=1, max_length=64, description="Model name.")]
VersionQ = Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Model version.")]
LabelQ = Annotated[str | None, Query(min_length=1, max_length=255, description="Predicted label.")]
SinceQ = Annotated[
    datetime | None, Query(description="Logged at or after (ISO 8601; UTC if naive).")
]
UntilQ = Annotated[datetime | None, Query(description="Logged before (ISO 8601; UTC if naive).")]


class RankedOut(BaseModel):
    label: str
    confidence: float


class QueueItemOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    request_id: str
    index: int
    created_at: datetime
    model: str
    version: int
    text: str | None = Field(description="None when TEXTCLS_LOG_TEXT kept no text.")
    label: str
    confidence: float
    fallback: bool
    ranking: list[RankedOut]
    corrected_label: str | None = Field(description="The newest feedback, if any.")
    priority: Literal["fallback", "low_confidence", "other"]
    duplicates: int = Field(1, description="Near-duplicate predictions this item stands for.")
    similar: int = Field(1, description="Pending texts alike, itself and duplicates included.")
    score: float | None = Field(
        None, description="Teaching value (order=teach): uncertainty x (1 + 0.02 ln(similar))."
    )
    trace_id: str | None = Field(description="W3C trace id of the request, when it was traced.")


class LabelSet(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: str
    version: int
    labels: list[str] | None = Field(description="None when the version's files are gone.")


class QueueResponse(BaseModel):
    """A page of the queue, and the labels a reviewer may pick for its items' models."""

    total: int = Field(description="Items matching the filters, over all pages.")
    items: list[QueueItemOut]
    label_sets: list[LabelSet]


class LabelStatsOut(BaseModel):
    label: str
    predictions: int
    fallbacks: int
    reviewed: int = Field(description="Predictions of this label with feedback.")
    disagreed: int = Field(description="Reviewed ones whose newest feedback is another label.")
    disagreement_rate: float | None
    corrected_to: int = Field(description="Times this label was the correction of another.")


class StatsResponse(BaseModel):
    predictions: int
    reviewed: int
    disagreed: int
    disagreement_rate: float | None
    labels: list[LabelStatsOut]


class LoggedVersion(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: str
    version: int
    predictions: int
    served: bool = Field(description="This version answers requests now.")


class VersionsResponse(BaseModel):
    versions: list[LoggedVersion]


PRIORITIES = ("fallback", "low_confidence", "other")


def _engine(services: Services) -> Engine:
    writer = services.log_writer
    if writer is None or writer.engine is None:
        raise PredictionLogOff(
            "the review page needs the prediction log; TEXTCLS_LOG_PREDICTIONS is false"
        )
    return writer.engine


def _read(read: Callable[[], T]) -> T:
    try:
        return read()
    except OperationalError as exc:
        raise LogStoreUnavailable(
            "the prediction log database is unavailable; try again later"
        ) from exc


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(f"'{name}' is out of range once converted to UTC") from exc


def _filter(
    model: str | None,
    version: int | None,
    label: str | None,
    *,
    since: datetime | None,
    until: datetime | None,
    trace_id: str | None = None,
) -> LogFilter:
    for name, value in (("model", model), ("label", label)):
        if value is not None and "\x00" in value:
            raise InvalidInput(f"'{name}' must not contain NUL characters")
    start, end = _utc(since, "since"), _utc(until, "until")
    if start is not None and end is not None and start >= end:
        raise InvalidInput("'since' must be before 'until'")
    return LogFilter(
        model=model, version=version, label=label, since=start, until=end, trace_id=trace_id
    )


def _item_out(i: QueueItem) -> dict[str, Any]:
    return {
        "request_id": i.request_id,
        "index": i.index,
        "created_at": i.created_at,
        "model": i.model,
        "version": i.version,
        "text": i.text,
        "label": i.label,
        "confidence": i.confidence,
        "fallback": i.fallback,
        "ranking": i.ranking,
        "corrected_label": i.corrected_label,
        "priority": PRIORITIES[i.priority],
        "duplicates": i.duplicates,
        "similar": i.similar,
        "score": i.score,
        "trace_id": i.trace_id,
    }


@router.get("/queue", response_model=QueueResponse, responses=ERRORS)  # type: ignore[arg-type]
def get_queue(
    services: ServicesDep,
    *,
    model: ModelQ = None,
    version: VersionQ = None,
    label: LabelQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    status: Annotated[
        Literal["pending", "reviewed", "all"],
        Query(description="pending: no feedback yet; reviewed: with feedback."),
    ] = "pending",
    low_confidence: Annotated[
        float, Query(ge=0, le=1, description="Under this confidence counts as low.")
    ] = 0.5,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    order: Annotated[
        Literal["teach", "newest"],
        Query(
            description="teach: the labels that teach most first (uncertain, standing for "
            "many similar texts; near-duplicates as one item); newest: fallbacks, then low "
            "confidence, then the rest, newest first in each."
        ),
    ] = "teach",
    trace_id: Annotated[
        str | None,
        Query(
            pattern="^[0-9a-f]{32}$",
            description="Only the predictions of this request's trace (32 lowercase hex).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Logged predictions to review, the labels that teach the model most first."""
    where = _filter(model, version, label, since=since, until=until, trace_id=trace_id)
    engine = _engine(services)
    if order == "teach":
        page = _read(lambda: teach_queue(engine, where, status=status, limit=limit, offset=offset))
    else:
        page = _read(
            lambda: review_queue(
                engine, where, low_confidence, status=status, limit=limit, offset=offset
            )
        )
    versions = sorted({(i.model, i.version) for i in page.items})
    return {
        "total": page.total,
        "items": [_item_out(i) for i in page.items],
        "label_sets": [
            {"model": m, "version": v, "labels": labels_of(services, m, v)} for m, v in versions
        ],
    }


@router.get("/stats", response_model=StatsResponse, responses=ERRORS)  # type: ignore[arg-type]
def get_stats(
    services: ServicesDep,
    *,
    model: ModelQ = None,
    version: VersionQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> dict[str, Any]:
    """Per predicted label: predictions, feedback and the rate at which reviewers disagreed."""
    where = _filter(model, version, None, since=since, until=until)
    engine = _engine(services)
    stats = _read(lambda: label_feedback(engine, where))
    reviewed = sum(s.reviewed for s in stats)
    disagreed = sum(s.disagreed for s in stats)
    return {
        "predictions": sum(s.predictions for s in stats),
        "reviewed": reviewed,
        "disagreed": disagreed,
        "disagreement_rate": disagreed / reviewed if reviewed else None,
        "labels": [
            {
                "label": s.label,
                "predictions": s.predictions,
                "fallbacks": s.fallbacks,
                "reviewed": s.reviewed,
                "disagreed": s.disagreed,
                "disagreement_rate": s.disagreement_rate,
                "corrected_to": s.corrected_to,
            }
            for s in stats
        ],
    }


@router.get("/versions", response_model=VersionsResponse, responses=ERRORS)  # type: ignore[arg-type]
def get_versions(services: ServicesDep) -> dict[str, Any]:
    """The model versions the log holds predictions of, for the page's filters."""
    engine = _engine(services)
    served = {
        (name, e.serving.model.version)
        for name, e in services.repository.entries.items()
        if e.serving is not None
    }
    rows = _read(lambda: logged_versions(engine))
    return {
        "versions": [
            {"model": m, "version": v, "predictions": n, "served": (m, v) in served}
            for m, v, n in rows
        ]
    }
