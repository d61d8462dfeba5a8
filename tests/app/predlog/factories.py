"""Build prediction records and rows for the prediction log tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.predlog.records import PredictionRecord


def make_record(
    index: int = 0,
    request_id: str | None = None,
    text: str = "where is my card?",
    label: str = "card_arrival",
    model: str = "example",
    version: int = 1,
    fallback: bool = False,
    created_at: datetime | None = None,
) -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id or uuid.uuid4().hex,
        index=index,
        created_at=created_at or datetime.now(UTC),
        client="tests",
        model=model,
        version=version,
        text=text,
        label=label,
        confidence=0.75,
        fallback=fallback,
        ranking=[(label, 0.75), ("other", 0.25)],
        latency_ms=3.5,
        batch_size=8,
    )


def make_records(n: int, per_request: int = 1) -> list[PredictionRecord]:
    """``n`` records, ``per_request`` of them sharing each request id."""
    records = []
    for start in range(0, n, per_request):
        rid = uuid.uuid4().hex
        for i in range(min(per_request, n - start)):
            records.append(make_record(index=i, request_id=rid, text=f"text {start + i}"))
    return records
