"""One answered prediction as the service hands it to the log, and its row in the database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from app.predlog.redaction import redact

LogTextMode = Literal["full", "redacted", "hash", "none"]


@dataclass(slots=True, kw_only=True)
class PredictionRecord:
    """A classified text with the full text; the log writer applies the privacy mode.

    Not frozen: one is built per answered text on the event loop, and a frozen dataclass's
    ``__init__`` pays an ``object.__setattr__`` call per field. Nothing mutates records.
    """

    request_id: str
    index: int
    created_at: datetime
    client: str | None
    model: str
    version: int
    text: str
    label: str
    confidence: float
    fallback: bool
    ranking: list[tuple[str, float]]
    latency_ms: float
    batch_size: int
    role: str = "primary"  # or "shadow": a shadow version's prediction, never answered
    trace_id: str | None = None  # the request's W3C trace id (32 hex digits), when traced
    span_id: str | None = None  # its span when sampled, which the log write's span links to


def to_row(record: PredictionRecord, log_text: LogTextMode) -> dict[str, Any]:
    """The ``prediction_log`` row for ``record``, keeping only as much text as ``log_text`` allows.

    ``text_sha256`` hashes the full text for ``full`` and ``hash`` (to find repeats without
    storing them), the redacted text for ``redacted`` (a hash of the original would let anyone
    who reads the redacted text guess the card number back), and nothing for ``none``, since a
    hash of a short text can be reversed by guessing.
    """
    text: str | None
    hashed: str | None
    if log_text == "full":
        text = hashed = record.text
    elif log_text == "redacted":
        text = hashed = redact(record.text)
    elif log_text == "hash":
        text, hashed = None, record.text
    else:
        text = hashed = None
    digest = None if hashed is None else hashlib.sha256(hashed.encode("utf-8")).hexdigest()
    created = record.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    elif created.tzinfo is not UTC:
        created = created.astimezone(UTC)
    return {
        "request_id": record.request_id,
        "index": record.index,
        "created_at": created,
        "client": record.client,
        "model": record.model,
        "version": record.version,
        "text": text,
        "text_sha256": digest,
        "label": record.label,
        "confidence": float(record.confidence),
        "fallback": bool(record.fallback),
        "ranking": [{"label": lbl, "confidence": float(c)} for lbl, c in record.ranking],
        "latency_ms": float(record.latency_ms),
        "batch_size": int(record.batch_size),
        "role": record.role,
        "trace_id": record.trace_id,
    }


def utc_now() -> datetime:
    return datetime.now(UTC)
