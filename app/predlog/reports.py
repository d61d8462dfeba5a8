"""Read the prediction log: summary statistics and corrected examples for retraining."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, case, func, select
from sqlalchemy.orm import Session

from app.predlog.tables import Feedback, PredictionLog


@dataclass(frozen=True, slots=True, kw_only=True)
class LogStats:
    """What the log holds from ``since`` on; accuracy counts the newest correction only."""

    since: datetime
    requests: int
    predictions: int
    fallbacks: int
    labels: dict[str, int] = field(default_factory=dict)
    with_feedback: int = 0
    correct: int = 0

    @property
    def fallback_rate(self) -> float | None:
        return self.fallbacks / self.predictions if self.predictions else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.with_feedback if self.with_feedback else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CorrectedExample:
    """One prediction with its newest correction; ``text`` is None when it was not logged.

    ``predicted_label`` is None for a correction sent with its text for a prediction the log
    did not keep.
    """

    request_id: str
    index: int
    text: str | None
    label: str
    predicted_label: str | None


def _newest_feedback() -> Select[int]:
    """Ids of the newest correction of each prediction."""
    return select(func.max(Feedback.id)).group_by(Feedback.request_id, Feedback.index)


def log_stats(engine: Engine, since: datetime) -> LogStats:
    """Requests, fallback rate, label distribution and accuracy on corrected predictions."""
    # Shadow rows (a version watched on real traffic) are not what clients got: left out.
    recent = (PredictionLog.created_at >= since) & (PredictionLog.role == "primary")
    with Session(engine) as session:
        predictions, requests, fallbacks = session.execute(
            select(
                func.count(),
                func.count(func.distinct(PredictionLog.request_id)),
                func.coalesce(func.sum(case((PredictionLog.fallback, 1), else_=0)), 0),
            ).where(recent)
        ).one()
        labels: dict[str, int] = {
            label: count
            for label, count in session.execute(
                select(PredictionLog.label, func.count())
                .where(recent)
                .group_by(PredictionLog.label)
                .order_by(func.count().desc(), PredictionLog.label)
            )
        }
        with_feedback, correct = session.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(case((Feedback.label == PredictionLog.label, 1), else_=0)), 0
                ),
            )
            .select_from(Feedback)
            .join(PredictionLog, _corrected_prediction())
            .where(recent, Feedback.id.in_(_newest_feedback()))
        ).one()
    return LogStats(
        since=since,
        requests=requests,
        predictions=predictions,
        fallbacks=int(fallbacks),
        labels=labels,
        with_feedback=with_feedback,
        correct=int(correct),
    )


def _corrected_prediction() -> ColumnElement[bool]:
    """The join of a correction to the answered (primary) prediction it corrects."""
    return (
        (PredictionLog.request_id == Feedback.request_id)
        & (PredictionLog.index == Feedback.index)
        & (PredictionLog.role == "primary")
    )


def _corrections() -> Select[str, int, str | None, str, str | None]:
    """Each correction beside the answered (primary) prediction it corrects, if logged.

    A correction sent with its text counts without its prediction (sampled out of the log),
    and its text wins over the logged one (which may be redacted or blanked by retention).
    """
    return (
        select(
            Feedback.request_id,
            Feedback.index,
            func.coalesce(Feedback.text, PredictionLog.text),
            Feedback.label,
            PredictionLog.label,
        )
        .select_from(Feedback)
        .outerjoin(PredictionLog, _corrected_prediction())
        .where(PredictionLog.id.is_not(None) | Feedback.text.is_not(None))
    )


def corrected_examples(engine: Engine, since: datetime) -> list[CorrectedExample]:
    """Predictions whose newest correction was given at or after ``since``, oldest first."""
    with Session(engine) as session:
        rows = session.execute(
            _corrections()
            .where(Feedback.created_at >= since, Feedback.id.in_(_newest_feedback()))
            .order_by(Feedback.id)
        )
        return [_example(r) for r in rows]


def _example(r: Any) -> CorrectedExample:
    return CorrectedExample(
        request_id=r[0], index=r[1], text=r[2], label=r[3], predicted_label=r[4]
    )


@dataclass(frozen=True, slots=True)
class ModelCorrections:
    """The newest correction of each distinct logged text of one model (for ``retrain``)."""

    examples: list[CorrectedExample]  # one per text, with text
    without_text: int  # corrections whose text the log kept only as a hash, or not at all


def model_corrections(engine: Engine, model: str, since: datetime) -> ModelCorrections:
    """Corrections of ``model``'s answered predictions given at or after ``since``.

    The newest correction of each prediction counts; when one text was corrected in several
    predictions, the newest of those wins.
    """
    with Session(engine) as session:
        rows = session.execute(
            _corrections()
            .where(
                func.coalesce(PredictionLog.model, Feedback.model) == model,
                Feedback.created_at >= since,
                Feedback.id.in_(_newest_feedback()),
            )
            .order_by(Feedback.id)
        )
        by_text: dict[str, CorrectedExample] = {}
        without_text = 0
        for row in rows:
            example = _example(row)
            if example.text is None:
                without_text += 1
                continue
            by_text.pop(example.text, None)  # re-insert: the dict stays in newest-last order
            by_text[example.text] = example
        return ModelCorrections(list(by_text.values()), without_text)
