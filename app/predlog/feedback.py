"""Record a correction of a logged prediction; all corrections are kept, the newest wins.

A correction of a prediction the log did not keep (``TEXTCLS_LOG_SAMPLE_RATE`` left it out)
is refused with ``PredictionNotLogged``, unless it carries the text: then it is stored with
its text, a training example of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.errors import InvalidInput, LogStoreUnavailable, PredictionNotFound, PredictionNotLogged
from app.predlog.records import utc_now
from app.predlog.sampling import sampled_in
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
    model: str | None
    version: int | None
    predicted_label: str | None  # None: the prediction was not logged
    text: str | None = None

    @property
    def correct(self) -> bool | None:
        """Whether the model had it right (None when the prediction was not logged)."""
        if self.predicted_label is None:
            return None
        return self.label == self.predicted_label


@dataclass(frozen=True, slots=True, kw_only=True)
class Unlogged:
    """How to treat a correction of a prediction the log may have sampled out.

    ``model`` and ``labels``: the model such a correction is filed under and the labels it
    may carry (None: unknown, any label is kept).
    """

    sample_rate: float
    model: str | None = None
    labels: list[str] | None = None


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
    text: str | None = None,
    unlogged: Unlogged | None = None,
) -> StoredFeedback:
    """Store ``label`` as the correct answer for prediction ``(request_id, index)``.

    ``labels_for(model, version)`` gives the labels of the model that made the prediction, or
    None when they cannot be known any more (the version was deleted): then any label is kept.
    ``flush_log``, when given, is called once if the prediction is not in the database yet (it
    may still be in the log writer's queue) and should return True once the queue is written.
    ``text``, when given, is stored with the correction. ``unlogged`` says how the log samples:
    a prediction it left out is refused with PredictionNotLogged, or with ``text`` stored as
    an example. Raises PredictionNotFound, PredictionNotLogged, InvalidInput or
    LogStoreUnavailable.
    """
    record = partial(
        _record, engine, request_id, index, label=label, labels_for=labels_for, source=source
    )
    unlogged_feedback = partial(_unlogged, engine, request_id, index, label=label, source=source)
    try:
        try:
            return record(text=text)
        except PredictionNotFound:
            if flush_log is None or not flush_log():
                return unlogged_feedback(text=text, unlogged=unlogged)
            try:
                return record(text=text)
            except PredictionNotFound:
                return unlogged_feedback(text=text, unlogged=unlogged)
    except OperationalError as exc:
        raise LogStoreUnavailable(
            "the prediction log database is unavailable; try again later"
        ) from exc


def _unlogged(
    engine: Engine,
    request_id: str,
    index: int,
    *,
    label: str,
    source: str,
    text: str | None,
    unlogged: Unlogged | None,
) -> StoredFeedback:
    """A correction of a prediction not in the log: refused, or kept with its text."""
    missing = f"no logged prediction with request_id {request_id!r} and index {index}"
    if unlogged is None or sampled_in(request_id, index, unlogged.sample_rate):
        raise PredictionNotFound(missing)
    if text is None:
        raise PredictionNotLogged(
            f"{missing}: TEXTCLS_LOG_SAMPLE_RATE={unlogged.sample_rate:g} logs only that share "
            "of confident predictions, and this one was not logged. Send the text in the "
            "feedback's 'text' field to keep the correction as a training example."
        )
    if unlogged.labels is not None and label not in unlogged.labels:
        raise InvalidInput(
            f"label {label!r} is not one of model {unlogged.model!r}'s labels: "
            + ", ".join(unlogged.labels)
        )
    with Session(engine) as session, session.begin():
        row = Feedback(
            request_id=request_id,
            index=index,
            label=label,
            created_at=utc_now(),
            source=source,
            text=text,
            model=unlogged.model,
        )
        return _stored(session, row, None)


def _record(
    engine: Engine,
    request_id: str,
    index: int,
    *,
    label: str,
    labels_for: LabelsLookup,
    source: str,
    text: str | None,
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
        if text is not None:
            row.text = text
        return _stored(session, row, prediction)


def _stored(session: Session, row: Feedback, prediction: PredictionLog | None) -> StoredFeedback:
    """``row`` written (its id assigned) and returned with the prediction it corrects (None:
    the prediction was not logged; the row's own model then)."""
    session.add(row)
    session.flush()
    return StoredFeedback(
        id=row.id,
        request_id=row.request_id,
        index=row.index,
        label=row.label,
        created_at=row.created_at,
        source=row.source,
        model=prediction.model if prediction else row.model,
        version=prediction.version if prediction else None,
        predicted_label=prediction.label if prediction else None,
        text=row.text,
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
