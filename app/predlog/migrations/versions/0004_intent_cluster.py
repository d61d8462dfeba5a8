"""intent_cluster: groups of logged texts found by `textcls intents discover`

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "intent_cluster",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("space", sa.String(64), nullable=False, comment="the embedding clustered in"),
        sa.Column("rank", sa.Integer, nullable=False, comment="1 = the biggest of its discovery"),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("examples", JSON, nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("nearest_label", sa.String(255), nullable=True),
        sa.Column("nearest_similarity", sa.Float, nullable=True),
        sa.Column("members", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_intent_cluster_model_status", "intent_cluster", ["model", "status"])


def downgrade() -> None:
    op.drop_index("ix_intent_cluster_model_status", table_name="intent_cluster")
    op.drop_table("intent_cluster")
