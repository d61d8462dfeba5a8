"""Record a correction of a logged prediction; all corrections are kept, the newest wins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.errors import InvalidInput, LogStoreUnavailable, PredictionNotFound
from app.predlog.records import utc_now
from app.predlog.tables import Feedback, PredictionLog

LabelsLookup = Callable[[str, int], list[str] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFeedback:
    """A stored correction, with the prediction it corrects."""

    id: int
    request_id: str
    index: int
    label: str
    created_at: datetime
    source: str
    model: str
    version: int
    predicted_label: str

    @property
    def correct(self) -> bool:
        """Whether the model had it right."""
        return self.label == self.predicted_label


def find_prediction(session: Session, request_id: str, index: int) -> PredictionLog | None:
    return session.scalars(
        select(PredictionLog).where(
            PredictionLog.request_id == request_id,
            PredictionLog.index == index,
            PredictionLog.role == "primary",  # feedback corrects the answer a client got
        )
    ).one_or_none()


def record_feedback(
    engine: Engine,
    request_id: str,
    index: int,
    *,
    label: str,
    labels_for: LabelsLookup,
    source: str = "api",
    flush_log: Callable[[], bool] | None = None,
) -> StoredFeedback:
    """Store ``label`` as the correct answer for prediction ``(request_id, index)``.

    ``labels_for(model, version)`` gives the labels of the model that made the prediction, or
    None when they cannot be known any more (the version was deleted): then any label is kept.
    ``flush_log``, when given, is called once if the prediction is not in the database yet (it
    may still be in the log writer's queue) and should return True once the queue is written.
    Raises PredictionNotFound, InvalidInput or LogStoreUnavailable.
    """
    try:
        try:
            return _record(
                engine, request_id, index, label=label, labels_for=labels_for, source=source
            )
        except PredictionNotFound:
            if flush_log is None or not flush_log():
                raise
            return _record(
                engine, request_id, index, label=label, labels_for=labels_for, source=source
            )
    except OperationalError as exc:
        raise LogStoreUnavailable(
            "the prediction log database is unavailable; try again later"
        ) from exc


def _record(
    engine: Engine,
    request_id: str,
    index: int,
    *,
    label: str,
    labels_for: LabelsLookup,
    source: str,
) -> StoredFeedback:
    with Session(engine) as session, session.begin():
        prediction = find_prediction(session, request_id, index)
        if prediction is None:
            raise PredictionNotFound(
                f"no logged prediction with request_id {request_id!r} and index {index}"
            )
        labels = labels_for(prediction.model, prediction.version)
        if labels is not None and label not in labels:
            raise InvalidInput(
                f"label {label!r} is not one of model {prediction.model!r} version "
                f"{prediction.version}'s labels: {', '.join(labels)}"
            )
        row = Feedback(
            request_id=request_id, index=index, label=label, created_at=utc_now(), source=source
        )
        session.add(row)
        session.flush()
        return StoredFeedback(
            id=row.id,
            request_id=request_id,
            index=index,
            label=label,
            created_at=row.created_at,
            source=source,
            model=prediction.model,
            version=prediction.version,
            predicted_label=prediction.label,
        )


def feedback_history(engine: Engine, request_id: str, index: int) -> list[str]:
    """Labels given for one prediction, oldest first (the last one is in force)."""
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Feedback.label)
                .where(Feedback.request_id == request_id, Feedback.index == index)
                .order_by(Feedback.id)
            )
        )
