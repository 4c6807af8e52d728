"""sightings: records a connection holds that matched nothing when read, by natural-key digest,
so that a hub record made later links to them instead of creating a second copy (issue 19)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sightings",
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("connection", "entity_type", "external_id", "key", name="pk_sightings"),
    )
    op.create_index("ix_sightings_lookup", "sightings", ["connection", "entity_type", "digest"])


def downgrade() -> None:
    op.drop_index("ix_sightings_lookup", table_name="sightings")
    op.drop_table("sightings")
