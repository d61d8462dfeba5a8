"""prediction_log.role: 'primary' for answered rows, 'shadow' for a shadow version's

A shadow version classifies the same texts as the version that answered, under the same
request id and index, so the unique key becomes (request_id, index, role). Existing rows were
all answered: they get 'primary' (the column's server default).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot alter constraints in place, so Alembic copies the table
    # there; on PostgreSQL these are plain ALTER TABLE statements.
    with op.batch_alter_table("prediction_log") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="primary"))
        batch.drop_constraint("uq_prediction_log_request_index", type_="unique")
        batch.create_unique_constraint(
            "uq_prediction_log_request_index_role", ["request_id", "index", "role"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM prediction_log WHERE role <> 'primary'")
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_constraint("uq_prediction_log_request_index_role", type_="unique")
        batch.create_unique_constraint("uq_prediction_log_request_index", ["request_id", "index"])
        batch.drop_column("role")
