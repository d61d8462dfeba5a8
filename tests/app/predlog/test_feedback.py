"""Feedback service: corrections of logged predictions, newest wins, history kept."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from app.edge.errors import status_of
from app.errors import InvalidInput, PredictionNotFound
from app.predlog.feedback import feedback_history, record_feedback
from app.predlog.inserts import insert_rows
from app.predlog.records import PredictionRecord, to_row
from tests.app.predlog.factories import make_record

LABELS = {("example", 1): ["card_arrival", "lost_card", "other"]}


def labels_for(model: str, version: int) -> list[str] | None:
    return LABELS.get((model, version))


def _logged(engine: Engine, **kwargs: object) -> PredictionRecord:
    record = make_record(**kwargs)  # type: ignore[arg-type]
    with engine.begin() as conn:
        insert_rows(conn, [to_row(record, "full")])
    return record


def test_correction_is_stored_and_the_newest_wins(engine: Engine) -> None:
    rec = _logged(engine, index=1)
    first = record_feedback(engine, rec.request_id, 1, label="lost_card", labels_for=labels_for)
    assert (first.label, first.predicted_label, first.correct) == (
        "lost_card",
        "card_arrival",
        False,
    )
    assert (first.model, first.version, first.source) == ("example", 1, "api")
    second = record_feedback(
        engine, rec.request_id, 1, label="card_arrival", labels_for=labels_for, source="agent"
    )
    assert second.id > first.id and second.correct
    assert feedback_history(engine, rec.request_id, 1) == ["lost_card", "card_arrival"]


def test_unknown_request_or_index_is_not_found(engine: Engine) -> None:
    rec = _logged(engine, index=0)
    with pytest.raises(PredictionNotFound) as exc:
        record_feedback(engine, "no-such-request", 0, label="other", labels_for=labels_for)
    assert status_of(exc.value) == 404
    with pytest.raises(PredictionNotFound):
        record_feedback(engine, rec.request_id, 1, label="other", labels_for=labels_for)
    assert feedback_history(engine, rec.request_id, 1) == []


def test_a_label_the_model_lacks_is_rejected(engine: Engine) -> None:
    rec = _logged(engine)
    with pytest.raises(InvalidInput) as exc:
        record_feedback(engine, rec.request_id, 0, label="refund", labels_for=labels_for)
    assert status_of(exc.value) == 422 and "refund" in exc.value.detail
    assert feedback_history(engine, rec.request_id, 0) == []


def test_labels_of_a_vanished_version_cannot_be_checked(engine: Engine) -> None:
    rec = _logged(engine, version=7)  # labels_for knows no version 7
    assert (
        record_feedback(engine, rec.request_id, 0, label="anything", labels_for=labels_for).label
        == "anything"
    )
