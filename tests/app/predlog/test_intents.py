"""Discovered intents in the log: stored groups, and decisions saved as feedback, on SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.predlog.feedback import record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.intents import FoundGroup, decide, list_groups, logged_texts, store_groups
from app.predlog.records import to_row
from app.predlog.review import LogFilter
from app.predlog.tables import Feedback
from tests.app.predlog.factories import make_record

KNOWN = ["card_arrival", "lost_card"]


def _group(keys: list[tuple[str, int]]) -> FoundGroup:
    return FoundGroup(
        members=keys,
        examples=["a"],
        terms=["t"],
        nearest_label="lost_card",
        nearest_similarity=0.5,
    )


def _feedback(engine: Engine) -> list[tuple[str, int, str, str]]:
    with Session(engine) as session:
        rows = session.execute(
            select(Feedback.request_id, Feedback.index, Feedback.label, Feedback.source).order_by(
                Feedback.id
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_store_decide_and_rediscover(engine: Engine) -> None:
    records = [make_record(i, "r", f"phone stolen {i}", fallback=i < 3) for i in range(4)]
    with engine.begin() as conn:
        insert_rows(conn, [to_row(r, "full") for r in records])
    assert len(logged_texts(engine, LogFilter(model="example"))) == 4
    record_feedback(engine, "r", 0, label="lost_card", labels_for=lambda m, v: None)
    first, second = store_groups(
        engine,
        "example",
        space="tfidf",
        groups=[_group([("r", 0), ("r", 1), ("r", 2)]), _group([("r", 3), ("gone", 0)])],
    )
    with pytest.raises(InvalidInput):
        decide(engine, first, action="name", label="lost_card", known=KNOWN)
    with pytest.raises(InvalidInput):
        decide(engine, first, action="map", label="phone_stolen", known=KNOWN)
    with pytest.raises(NotFound):
        decide(engine, 10**9, action="dismiss", label=None, known=KNOWN)
    done = decide(engine, first, action="name", label="phone_stolen", known=KNOWN)
    assert (done.feedback_rows, done.kept) == (2, 1)
    assert done.group.status == "named" and done.group.label == "phone_stolen"
    with pytest.raises(Conflict):
        decide(engine, first, action="dismiss", label=None, known=KNOWN)
    mapped = decide(engine, second, action="map", label="lost_card", known=KNOWN)
    assert (mapped.feedback_rows, mapped.kept) == (1, 1)  # ("gone", 0) is not in the log
    assert _feedback(engine) == [
        ("r", 0, "lost_card", "api"),
        ("r", 1, "phone_stolen", "intents"),
        ("r", 2, "phone_stolen", "intents"),
        ("r", 3, "lost_card", "intents"),
    ]
    # A new discovery replaces the undecided groups only.
    (third,) = store_groups(engine, "example", space="tfidf", groups=[_group([("r", 1)])])
    statuses = {g.id: g.status for g in list_groups(engine, "example", None)}
    assert statuses == {first: "named", second: "mapped", third: "open"}
    assert [g.id for g in list_groups(engine, "example", "open")] == [third]
