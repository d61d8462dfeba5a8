"""The teach-most queue order: uncertainty times the texts an item stands for, near-duplicates
collapsed into one item with a count, items alike to a higher one moved down; on SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from app.predlog.feedback import record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.records import PredictionRecord, to_row
from app.predlog.review import LogFilter
from app.predlog.teach_order import duplicate_key, rank_for_teaching, teach_queue, uncertainty
from tests.app.predlog.factories import make_record

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _rec(text: str, minutes: int, top: float, second: float) -> PredictionRecord:
    record = make_record(text=text, created_at=T0 + timedelta(minutes=minutes))
    return replace(record, confidence=top, ranking=[("a", top), ("b", second)])


def test_near_duplicates_share_a_key() -> None:
    assert duplicate_key("Where is order #123?", "x") == duplicate_key("where is ORDER 9", "y")
    assert duplicate_key("where is my order", "x") != duplicate_key("where is my refund", "x")
    assert duplicate_key(None, "fallback") == "fallback"


def test_uncertainty_is_one_minus_the_top_two_margin() -> None:
    assert uncertainty([{"confidence": 0.5}, {"confidence": 0.4}], 0.5) == 0.9
    assert uncertainty([{"confidence": 0.9}], 0.9) == 0.09999999999999998
    assert uncertainty([], 0.7) == 0.30000000000000004


def test_an_uncertain_text_standing_for_many_comes_first() -> None:
    texts = [
        "is my parcel lost 1",  # a close call, with near-duplicates and similar texts
        "is my parcel lost 2",
        "is my parcel lost 3",
        "my parcel is lost i think",
        "purple monkey dishwasher",  # a close call, a one-off
        "cancel my order 7",  # a sure answer, many alike
        "cancel my order 8",
        "cancel my order 9",
        "cancel my order 10",
    ]
    u = [0.9, 0.85, 0.9, 0.8, 0.9, 0.1, 0.1, 0.1, 0.1]
    ranked = rank_for_teaching(texts, u)
    assert ranked.groups[0] == [0, 1, 2]
    assert ranked.stands_for[0] == 4  # three duplicates and one similar text
    order = [texts[g[0]] for g in ranked.groups]
    assert order.index("purple monkey dishwasher") < order.index("cancel my order 7")
    # The text alike to the first item waits until every item not alike to one above it.
    assert order[-1] == "my parcel is lost i think"
    assert ranked.scores[:3] == sorted(ranked.scores[:3], reverse=True)
    assert sorted(i for g in ranked.groups for i in g) == list(range(len(texts)))
    # Without spreading, the order is the scores' alone.
    plain = rank_for_teaching(texts, u, spread=False)
    assert plain.scores == sorted(plain.scores, reverse=True)
    assert [texts[g[0]] for g in plain.groups][2] == "my parcel is lost i think"


def test_queue_collapses_duplicates_and_skips_reviewed(engine: Engine) -> None:
    records = [
        _rec("where is parcel 1", 0, 0.5, 0.45),
        _rec("where is parcel 2", 1, 0.5, 0.40),
        _rec("where is parcel 3", 2, 0.5, 0.48),
        _rec("reset my password", 3, 0.97, 0.01),
        _rec("change my address", 4, 0.55, 0.44),
    ]
    with engine.begin() as conn:
        insert_rows(conn, [to_row(r, "full") for r in records])
    page = teach_queue(engine, LogFilter(), status="pending", limit=10, offset=0)
    assert page.total == 3
    first = page.items[0]
    assert first.text == "where is parcel 3" and first.duplicates == 3  # the newest of three
    assert [i.text for i in page.items][-1] == "reset my password"
    assert all(i.score is not None for i in page.items)
    record_feedback(engine, first.request_id, first.index, label="a", labels_for=lambda m, v: None)
    after = teach_queue(engine, LogFilter(), status="pending", limit=10, offset=0)
    assert after.items[0].duplicates == 2
    assert teach_queue(engine, LogFilter(), status="reviewed", limit=10, offset=0).total == 1
    paged = teach_queue(engine, LogFilter(), status="pending", limit=1, offset=1)
    assert [i.text for i in paged.items] == [after.items[1].text]
