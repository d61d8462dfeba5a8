"""SQLAlchemy tables of the prediction log: ``prediction_log`` and ``feedback``."""

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
    """A correction of one logged prediction; all are kept, the newest (highest id) wins."""

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
