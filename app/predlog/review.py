"""Read the prediction log for the review page: the labelling queue and feedback per label."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, Select, and_, case, func, select
from sqlalchemy.orm import Session

from app.predlog.tables import Feedback, PredictionLog

ReviewStatus = Literal["pending", "reviewed", "all"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFilter:
    """Which logged predictions to look at; None means any."""

    model: str | None = None
    version: int | None = None
    label: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    trace_id: str | None = None

    def conditions(self) -> list[Any]:
        p = PredictionLog
        out: list[Any] = []
        if self.model is not None:
            out.append(p.model == self.model)
        if self.version is not None:
            out.append(p.version == self.version)
        if self.label is not None:
            out.append(p.label == self.label)
        if self.since is not None:
            out.append(p.created_at >= self.since)
        if self.until is not None:
            out.append(p.created_at < self.until)
        if self.trace_id is not None:
            out.append(p.trace_id == self.trace_id)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueItem:
    """One logged prediction to review; ``corrected_label`` is its newest feedback, if any."""

    request_id: str
    index: int
    created_at: datetime
    model: str
    version: int
    text: str | None
    label: str
    confidence: float
    fallback: bool
    ranking: list[dict[str, Any]]
    corrected_label: str | None
    priority: int  # 0 fallback, 1 low confidence, 2 the rest
    # The teach-most order (app.predlog.teach_order): near-duplicates this item stands for,
    # pending texts alike (itself included), and its teaching value.
    duplicates: int = 1
    similar: int = 1
    score: float | None = None
    trace_id: str | None = None  # the request's trace, when it was traced


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: list[QueueItem]
    total: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelFeedback:
    """Predictions of one label and what reviewers said about them (newest feedback counts)."""

    label: str
    predictions: int
    fallbacks: int
    reviewed: int
    disagreed: int
    corrected_to: int  # times this label was given as the correct one for another prediction

    @property
    def disagreement_rate(self) -> float | None:
        return self.disagreed / self.reviewed if self.reviewed else None


def newest_feedback() -> Any:
    """(request_id, index, label) of each prediction's newest correction, as a subquery."""
    newest = (
        select(func.max(Feedback.id).label("id"))
        .group_by(Feedback.request_id, Feedback.index)
        .subquery()
    )
    return (
        select(Feedback.request_id, Feedback.index, Feedback.label)
        .join(newest, Feedback.id == newest.c.id)
        .subquery("newest_feedback")
    )


def review_queue(
    engine: Engine,
    where: LogFilter,
    low_confidence: float,
    *,
    status: ReviewStatus = "pending",
    limit: int = 50,
    offset: int = 0,
) -> QueuePage:
    """Logged predictions worth a look: fallbacks first, then those under ``low_confidence``,
    then the rest; newest first within each group."""
    p = PredictionLog
    fb = newest_feedback()
    priority = case((p.fallback, 0), (p.confidence < low_confidence, 1), else_=2)
    joined = and_(fb.c.request_id == p.request_id, fb.c.index == p.index)
    conditions = where.conditions()
    if status == "pending":
        conditions.append(fb.c.label.is_(None))
    elif status == "reviewed":
        conditions.append(fb.c.label.is_not(None))
    base: Select[Any] = select(p, fb.c.label, priority).outerjoin(fb, joined).where(*conditions)
    count = select(func.count()).select_from(p).outerjoin(fb, joined).where(*conditions)
    page = base.order_by(priority, p.created_at.desc(), p.id.desc()).limit(limit).offset(offset)
    with Session(engine) as session:
        total = session.execute(count).scalar_one()
        items = [
            queue_item(row, corrected, int(prio)) for row, corrected, prio in session.execute(page)
        ]
    return QueuePage(items, total)


def queue_item(row: PredictionLog, corrected: str | None, priority: int) -> QueueItem:
    """A logged prediction as the review queue shows it."""
    return QueueItem(
        request_id=row.request_id,
        index=row.index,
        created_at=row.created_at,
        model=row.model,
        version=row.version,
        text=row.text,
        label=row.label,
        confidence=row.confidence,
        fallback=row.fallback,
        ranking=list(row.ranking or []),
        corrected_label=corrected,
        priority=priority,
        trace_id=row.trace_id,
    )


def label_feedback(engine: Engine, where: LogFilter) -> list[LabelFeedback]:
    """Per predicted label: predictions, fallbacks, reviewed, disagreed, and how often it was
    the correction of another label's prediction; most predicted first."""
    p = PredictionLog
    fb = newest_feedback()
    conditions = where.conditions()
    joined = and_(fb.c.request_id == p.request_id, fb.c.index == p.index)
    disagree = and_(fb.c.label.is_not(None), fb.c.label != p.label)
    per_label = (
        select(
            p.label,
            func.count(),
            func.coalesce(func.sum(case((p.fallback, 1), else_=0)), 0),
            func.count(fb.c.label),
            func.coalesce(func.sum(case((disagree, 1), else_=0)), 0),
        )
        .outerjoin(fb, joined)
        .where(*conditions)
        .group_by(p.label)
    )
    corrections = (
        select(fb.c.label, func.count())
        .select_from(p)
        .join(fb, joined)
        .where(*conditions, fb.c.label != p.label)
        .group_by(fb.c.label)
    )
    with Session(engine) as session:
        counts = {row[0]: [int(v) for v in row[1:]] for row in session.execute(per_label)}
        corrected_to = {label: int(n) for label, n in session.execute(corrections)}
    labels = set(counts) | set(corrected_to)
    out = []
    for label in labels:
        predictions, fallbacks, reviewed, disagreed = counts.get(label, [0, 0, 0, 0])
        out.append(
            LabelFeedback(
                label=label,
                predictions=predictions,
                fallbacks=fallbacks,
                reviewed=reviewed,
                disagreed=disagreed,
                corrected_to=corrected_to.get(label, 0),
            )
        )
    return sorted(out, key=lambda s: (-s.predictions, -s.corrected_to, s.label))


def logged_versions(engine: Engine) -> list[tuple[str, int, int]]:
    """(model, version, predictions) in the log, for the page's filters."""
    p = PredictionLog
    query = select(p.model, p.version, func.count()).group_by(p.model, p.version)
    with Session(engine) as session:
        rows = [(m, int(v), int(n)) for m, v, n in session.execute(query)]
    return sorted(rows, key=lambda r: (r[0], -r[1]))
