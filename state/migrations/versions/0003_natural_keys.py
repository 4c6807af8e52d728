"""natural_keys: first contact finds hub records by email, number or name through an index

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mapping.keys import natural_digests

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "natural_keys",
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("entity_id", "key", name=op.f("pk_natural_keys")),
    )
    op.create_index("ix_natural_keys_lookup", "natural_keys", ["entity_type", "key", "digest"])
    # Index the entities already stored, a batch at a time.
    entities = sa.table("entities", sa.column("id", sa.String), sa.column("type", sa.String),
                        sa.column("payload", sa.JSON), sa.column("deleted", sa.Boolean))
    conn = op.get_bind()
    rows = conn.execute(sa.select(entities.c.id, entities.c.type, entities.c.payload)
                        .where(entities.c.deleted.is_(False)))
    batch: list[dict[str, str]] = []
    for row in rows:
        for key, digest in natural_digests(dict(row.payload or {})).items():
            batch.append({"entity_id": row.id, "key": key, "entity_type": row.type, "digest": digest})
        if len(batch) >= 5000:
            conn.execute(table.insert(), batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)


def downgrade() -> None:
    op.drop_index("ix_natural_keys_lookup", table_name="natural_keys")
    op.drop_table("natural_keys")
