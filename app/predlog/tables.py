"""SQLAlchemy tables of the prediction log: ``prediction_log``, ``feedback``, ``log_audit``
and ``intent_cluster``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive, as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite has no BIGINT autoincrement; INTEGER PRIMARY KEY is its 64-bit rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Ranking = JSON().with_variant(JSONB(), "postgresql")


HOLDS_TEXT = "text IS NOT NULL OR text_sha256 IS NOT NULL"


class Base(DeclarativeBase):
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}


class PredictionLog(Base):
    """One classified text; ``(request_id, index, role)`` identifies it (``index`` in the
    request; ``role`` 'primary' for the answer, 'shadow' for a shadow version's prediction)."""

    __tablename__ = "prediction_log"
    __table_args__ = (
        UniqueConstraint(
            "request_id", "index", "role", name="uq_prediction_log_request_index_role"
        ),
        Index("ix_prediction_log_created_at", "created_at"),
        Index("ix_prediction_log_model_version", "model", "version"),
        Index("ix_prediction_log_trace_id", "trace_id"),
        # Rows still holding a text or its hash: what the pruner's text expiry looks for.
        Index(
            "ix_prediction_log_text_created_at",
            "created_at",
            sqlite_where=text(HOLDS_TEXT),
            postgresql_where=text(HOLDS_TEXT),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64))
    index: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    client: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text, comment="as TEXTCLS_LOG_TEXT allows")
    text_sha256: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(255))
    confidence: Mapped[float] = mapped_column(Float)
    fallback: Mapped[bool] = mapped_column(Boolean)
    ranking: Mapped[list[dict[str, Any]]] = mapped_column(Ranking)
    latency_ms: Mapped[float] = mapped_column(Float)
    batch_size: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16), server_default="primary")
    trace_id: Mapped[str | None] = mapped_column(
        String(32), comment="W3C trace id of the request, when it was traced"
    )


class Feedback(Base):
    """A correction of one logged prediction; all are kept, the newest (highest id) wins.

    ``text`` (and ``model``) are set when the correction came with its text, which is how a
    prediction the log did not keep (sampled out) still becomes a training example.
    """

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_request_index", "request_id", "index"),
        Index("ix_feedback_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64))
    index: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(64), default="api")
    text: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(64))


class LogAudit(Base):
    """One erasure from the log: what was asked (never the erased text) and how much went."""

    __tablename__ = "log_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(32))
    selector: Mapped[str] = mapped_column(String(255))
    rows: Mapped[int] = mapped_column(BigInteger)
    feedback: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(64))


OPEN = "open"  # an intent_cluster's status until the team decides


class IntentCluster(Base):
    """A group of logged texts `textcls intents discover` found, and what the team decided
    (a new label, an existing one, or dismissed); ``members``: its [request_id, index]."""

    __tablename__ = "intent_cluster"
    __table_args__ = (Index("ix_intent_cluster_model_status", "model", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(64))
    discovered_at: Mapped[datetime]
    space: Mapped[str] = mapped_column(String(64), comment="the embedding clustered in")
    rank: Mapped[int] = mapped_column(Integer, comment="1 = the biggest of its discovery")
    size: Mapped[int] = mapped_column(Integer)
    examples: Mapped[list[str]] = mapped_column(Ranking)
    terms: Mapped[list[str]] = mapped_column(Ranking)
    nearest_label: Mapped[str | None] = mapped_column(String(255))
    nearest_similarity: Mapped[float | None] = mapped_column(Float)
    members: Mapped[list[Any]] = mapped_column(Ranking)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    label: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[datetime | None]
