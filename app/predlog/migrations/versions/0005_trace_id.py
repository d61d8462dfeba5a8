"""prediction_log.trace_id: the W3C trace id of the request that a row answered

Set when the request was traced (OpenTelemetry on, OTEL_EXPORTER_OTLP_ENDPOINT set), so a
support ticket that names a trace leads to the logged answer, and a logged answer to its trace.
Existing rows have none.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.add_column(
            sa.Column(
                "trace_id",
                sa.String(32),
                nullable=True,
                comment="W3C trace id of the request, when it was traced",
            )
        )
    op.create_index("ix_prediction_log_trace_id", "prediction_log", ["trace_id"])


def downgrade() -> None:
    op.drop_index("ix_prediction_log_trace_id", table_name="prediction_log")
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("trace_id")
