"""holds: source records that failed to map, kept and retried instead of dropped (issue 23)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("record_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_tried", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_tried", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
        sa.UniqueConstraint("connection", "entity_type", "external_id",
                            name="uq_holds_connection_entity_type_external_id"),
    )
    op.create_index("ix_holds_fingerprint", "holds", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_holds_fingerprint", table_name="holds")
    op.drop_table("holds")
