"""alerts_open: the alerts sent whose condition still holds, so each problem is alerted once
across processes and CLI runs, and again only if it returns (issue 20, item 6)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts_open",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_alerts_open"),
    )


def downgrade() -> None:
    op.drop_table("alerts_open")
