"""the log's lifecycle: texts on feedback, an audit table, an index of rows still holding text

``feedback.text`` and ``feedback.model`` hold a correction sent with its text for a
prediction the log did not keep (sampled out, or erased): a training example of its own.
``log_audit`` records each erasure (what was asked, how many rows went, never their text).
The partial index on ``created_at`` covers only rows that still hold a text or its hash, so
the pruner finds the texts to blank without scanning rows blanked before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HOLDS_TEXT = sa.text("text IS NOT NULL OR text_sha256 IS NOT NULL")


def upgrade() -> None:
    op.add_column("feedback", sa.Column("text", sa.Text(), nullable=True))
    op.add_column("feedback", sa.Column("model", sa.String(64), nullable=True))
    op.create_table(
        "log_audit",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("selector", sa.String(255), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("feedback", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_prediction_log_text_created_at",
        "prediction_log",
        ["created_at"],
        sqlite_where=_HOLDS_TEXT,
        postgresql_where=_HOLDS_TEXT,
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_log_text_created_at", table_name="prediction_log")
    op.drop_table("log_audit")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("model")
        batch.drop_column("text")
