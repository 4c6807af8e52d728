"""Indexes on runs: by status (every run start closes the running runs whose lease ran out) and
by kind and start, and by start (the newest runs, of a kind or all), which scanned the whole run history (issue 22)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_kind_started", "runs", ["kind", "started_at"])
    op.create_index("ix_runs_started", "runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_started", table_name="runs")
    op.drop_index("ix_runs_kind_started", table_name="runs")
    op.drop_index("ix_runs_status", table_name="runs")
