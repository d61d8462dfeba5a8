"""Review queries: queue order and filters, feedback per label, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from app.predlog.feedback import record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.records import PredictionRecord, to_row
from app.predlog.review import LogFilter, label_feedback, logged_versions, review_queue
from tests.app.predlog.factories import make_record

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _log(engine: Engine, *records: PredictionRecord) -> None:
    with engine.begin() as conn:
        insert_rows(conn, [to_row(r, "full") for r in records])


def _rec(name: str, minutes: int, confidence: float, fallback: bool = False, **kw: object):
    record = make_record(
        text=name,
        created_at=T0 + timedelta(minutes=minutes),
        fallback=fallback,
        **kw,  # type: ignore[arg-type]
    )
    return replace(record, confidence=confidence)


def _any(model: str, version: int) -> list[str] | None:
    return None


def test_queue_puts_fallbacks_then_low_confidence_first_newest_first(engine: Engine) -> None:
    _log(
        engine,
        _rec("sure old", 0, 0.95),
        _rec("fallback old", 1, 0.30, fallback=True),
        _rec("low new", 5, 0.45),
        _rec("sure new", 6, 0.90),
        _rec("fallback new", 4, 0.40, fallback=True),
        _rec("low old", 2, 0.41),
    )
    page = review_queue(engine, LogFilter(), low_confidence=0.5)
    assert [i.text for i in page.items] == [
        "fallback new",
        "fallback old",
        "low new",
        "low old",
        "sure new",
        "sure old",
    ]
    assert [i.priority for i in page.items] == [0, 0, 1, 1, 2, 2]
    assert page.total == 6
    second = review_queue(engine, LogFilter(), 0.5, limit=2, offset=2)
    assert [i.text for i in second.items] == ["low new", "low old"] and second.total == 6


def test_queue_filters_and_review_status(engine: Engine) -> None:
    a = _rec("a", 0, 0.9, label="card_arrival")
    b = _rec("b", 10, 0.9, label="lost_card", version=2)
    c = _rec("c", 20, 0.9, label="lost_card", model="other")
    _log(engine, a, b, c)
    texts = lambda **kw: [i.text for i in review_queue(engine, LogFilter(**kw), 0.5).items]  # noqa: E731
    assert texts(model="example") == ["b", "a"]
    assert texts(model="example", version=2) == ["b"]
    assert texts(label="lost_card") == ["c", "b"]
    assert texts(since=T0 + timedelta(minutes=10)) == ["c", "b"]
    assert texts(until=T0 + timedelta(minutes=10)) == ["a"]
    record_feedback(engine, b.request_id, 0, label="card_arrival", labels_for=_any)
    pending = review_queue(engine, LogFilter(), 0.5, status="pending")
    assert [i.text for i in pending.items] == ["c", "a"]
    done = review_queue(engine, LogFilter(), 0.5, status="reviewed")
    assert [(i.text, i.corrected_label) for i in done.items] == [("b", "card_arrival")]
    assert review_queue(engine, LogFilter(), 0.5, status="all").total == 3


def test_feedback_per_label_counts_the_newest_correction(engine: Engine) -> None:
    r1 = _rec("1", 0, 0.9, label="card_arrival")
    r2 = _rec("2", 1, 0.4, label="card_arrival", fallback=True)
    r3 = _rec("3", 2, 0.9, label="lost_card")
    r4 = _rec("4", 3, 0.9, label="lost_card")
    _log(engine, r1, r2, r3, r4)
    record_feedback(engine, r1.request_id, 0, label="lost_card", labels_for=_any)
    record_feedback(
        engine, r1.request_id, 0, label="card_arrival", labels_for=_any
    )  # changed its mind: agrees
    record_feedback(engine, r2.request_id, 0, label="lost_card", labels_for=_any)
    record_feedback(engine, r3.request_id, 0, label="lost_card", labels_for=_any)
    stats = {s.label: s for s in label_feedback(engine, LogFilter())}
    arrival, lost = stats["card_arrival"], stats["lost_card"]
    assert (arrival.predictions, arrival.fallbacks, arrival.reviewed, arrival.disagreed) == (
        2,
        1,
        2,
        1,
    )
    assert arrival.disagreement_rate == 0.5 and arrival.corrected_to == 0
    assert (lost.predictions, lost.reviewed, lost.disagreed, lost.corrected_to) == (2, 1, 0, 1)
    assert lost.disagreement_rate == 0.0
    only_late = label_feedback(engine, LogFilter(since=T0 + timedelta(minutes=2)))
    assert [(s.label, s.predictions, s.reviewed) for s in only_late] == [("lost_card", 2, 1)]


def test_logged_versions(engine: Engine) -> None:
    _log(engine, _rec("a", 0, 0.9), _rec("b", 0, 0.9), _rec("c", 0, 0.9, version=2))
    assert logged_versions(engine) == [("example", 2, 1), ("example", 1, 2)]
