"""Discovered intents in the prediction log: the texts discovery reads, the groups it stores,
and a team's decision on a group, saved as feedback for each of its texts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.predlog.records import utc_now
from app.predlog.review import LogFilter
from app.predlog.tables import OPEN, Feedback, IntentCluster, PredictionLog

Action = Literal["name", "map", "dismiss"]
STATUS_OF = {"name": "named", "map": "mapped", "dismiss": "dismissed"}
# The source of feedback a decision writes; `textcls retrain` reads all feedback alike.
SOURCE = "intents"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedText:
    """A logged prediction discovery may group (its key, text and what the model said)."""

    request_id: str
    index: int
    text: str
    label: str
    confidence: float
    fallback: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundGroup:
    """A group to store: its members' keys (most central first) and its description."""

    members: list[tuple[str, int]]
    examples: list[str]
    terms: list[str]
    nearest_label: str | None
    nearest_similarity: float | None


def logged_texts(engine: Engine, where: LogFilter) -> list[LoggedText]:
    """Answered predictions with a logged text, oldest first."""
    p = PredictionLog
    conditions = [*where.conditions(), p.role == "primary", p.text.is_not(None)]
    query = select(p.request_id, p.index, p.text, p.label, p.confidence, p.fallback).where(
        *conditions
    )
    with Session(engine) as session:
        return [
            LoggedText(
                request_id=r, index=i, text=t or "", label=lab, confidence=c, fallback=bool(f)
            )
            for r, i, t, lab, c, f in session.execute(query.order_by(p.id))
        ]


def label_examples(engine: Engine, where: LogFilter, per_label: int) -> dict[str, list[str]]:
    """Up to ``per_label`` texts of each label the model answered with most confidence
    (without falling back): where each known label sits in the discovery space."""
    p = PredictionLog
    query = (
        select(p.label, p.text)
        .where(*where.conditions(), p.role == "primary", p.text.is_not(None), ~p.fallback)
        .order_by(p.label, p.confidence.desc(), p.id)
    )
    out: dict[str, list[str]] = {}
    with Session(engine) as session:
        for label, text in session.execute(query):
            texts = out.setdefault(label, [])
            if len(texts) < per_label and text is not None:
                texts.append(text)
    return out


def store_groups(
    engine: Engine, model: str, *, space: str, groups: Sequence[FoundGroup]
) -> list[int]:
    """Replace ``model``'s undecided groups with ``groups`` (biggest first); their ids."""
    now = utc_now()
    with Session(engine) as session, session.begin():
        session.execute(
            delete(IntentCluster).where(IntentCluster.model == model, IntentCluster.status == OPEN)
        )
        rows = [
            IntentCluster(
                model=model,
                discovered_at=now,
                space=space[:64],
                rank=rank,
                size=len(g.members),
                examples=g.examples,
                terms=g.terms,
                nearest_label=g.nearest_label,
                nearest_similarity=g.nearest_similarity,
                members=[[r, i] for r, i in g.members],
                status=OPEN,
            )
            for rank, g in enumerate(groups, start=1)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredGroup:
    id: int
    model: str
    discovered_at: datetime
    space: str
    rank: int
    size: int
    examples: list[str]
    terms: list[str]
    nearest_label: str | None
    nearest_similarity: float | None
    status: str
    label: str | None
    resolved_at: datetime | None


def _stored(row: IntentCluster) -> StoredGroup:
    return StoredGroup(
        id=row.id,
        model=row.model,
        discovered_at=row.discovered_at,
        space=row.space,
        rank=row.rank,
        size=row.size,
        examples=list(row.examples),
        terms=list(row.terms),
        nearest_label=row.nearest_label,
        nearest_similarity=row.nearest_similarity,
        status=row.status,
        label=row.label,
        resolved_at=row.resolved_at,
    )


def list_groups(engine: Engine, model: str | None, status: str | None) -> list[StoredGroup]:
    """Stored groups, newest discovery first, biggest first within one."""
    c = IntentCluster
    query = select(c).order_by(c.discovered_at.desc(), c.rank)
    if model is not None:
        query = query.where(c.model == model)
    if status is not None:
        query = query.where(c.status == status)
    with Session(engine) as session:
        return [_stored(row) for row in session.scalars(query)]


def model_of(engine: Engine, group_id: int) -> str | None:
    """The model a stored group belongs to (None: no such group)."""
    with Session(engine) as session:
        row = session.get(IntentCluster, group_id)
        return None if row is None else row.model


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What deciding a group wrote: feedback rows, and members left as they were (already
    reviewed one by one, or no longer in the log)."""

    group: StoredGroup
    feedback_rows: int
    kept: int


def decide(
    engine: Engine,
    group_id: int,
    *,
    action: Action,
    label: str | None,
    known: Sequence[str] | None,
) -> Decision:
    """Name the group (a new label), map it to an existing label of ``known``, or dismiss it.

    Naming or mapping saves ``label`` as feedback for each member that has none yet; a member
    a reviewer already labelled keeps that label. NotFound, Conflict (decided already) or
    InvalidInput (a label that does not fit the action).
    """
    with Session(engine) as session, session.begin():
        row = session.get(IntentCluster, group_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no discovered intent with id {group_id}")
        _check_label(action, label, known)
        if row.status != OPEN:
            raise Conflict(
                f"intent {group_id} was already {row.status} ({row.label or 'no label'})"
            )
        written = kept = 0
        if action != "dismiss":
            assert label is not None
            written, kept = _write_feedback(session, row.members, label)
        row.status, row.label, row.resolved_at = STATUS_OF[action], label, utc_now()
        session.flush()
        return Decision(group=_stored(row), feedback_rows=written, kept=kept)


def _check_label(action: Action, label: str | None, known: Sequence[str] | None) -> None:
    if action == "dismiss":
        if label is not None:
            raise InvalidInput("'dismiss' takes no label")
        return
    if label is None or not label.strip() or label != label.strip():
        raise InvalidInput(f"'{action}' needs a label without surrounding spaces")
    if known is None:
        return
    if action == "map" and label not in known:
        raise InvalidInput(f"label {label!r} is not one of the model's labels: {', '.join(known)}")
    if action == "name" and label in known:
        raise InvalidInput(f"label {label!r} exists already: map the intent to it instead")


def _write_feedback(session: Session, members: list[list[object]], label: str) -> tuple[int, int]:
    keys = {(str(r), int(i)) for r, i in members}  # type: ignore[call-overload]
    request_ids = sorted({r for r, _ in keys})
    logged: set[tuple[str, int]] = set()
    reviewed: set[tuple[str, int]] = set()
    for chunk in range(0, len(request_ids), 500):
        ids = request_ids[chunk : chunk + 500]
        logged |= set(
            session.execute(
                select(PredictionLog.request_id, PredictionLog.index).where(
                    PredictionLog.request_id.in_(ids), PredictionLog.role == "primary"
                )
            ).tuples()
        )
        reviewed |= set(
            session.execute(
                select(Feedback.request_id, Feedback.index).where(Feedback.request_id.in_(ids))
            ).tuples()
        )
    now = utc_now()
    todo = sorted((keys & logged) - reviewed)
    session.add_all(
        Feedback(request_id=r, index=i, label=label, created_at=now, source=SOURCE) for r, i in todo
    )
    return len(todo), len(keys) - len(todo)
