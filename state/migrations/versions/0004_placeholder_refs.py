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
    # Starts empty: a record stored before this revision that holds a placeholder is mended when
    # it is read again (`hub resync`), which resolves its references afresh.
    op.create_table(
        "placeholder_refs",
        sa.Column("placeholder_id", sa.String(length=36), nullable=False),
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("placeholder_id", "entity_id", name=op.f("pk_placeholder_refs")),
    )


def downgrade() -> None:
    op.drop_table("placeholder_refs")
