"""placeholder_refs: hub records holding the placeholder id of a record not linked yet

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Starts empty: a database from before this revision may hold dangling placeholders the
    # index never saw; `hub diff` reports their writes as waiting, and a resync re-reads them.
    op.create_table(
        "placeholder_refs",
        sa.Column("placeholder_id", sa.String(length=36), nullable=False),
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("placeholder_id", "entity_id", name=op.f("pk_placeholder_refs")),
    )


def downgrade() -> None:
    op.drop_table("placeholder_refs")
