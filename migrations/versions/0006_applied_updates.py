"""applied_updates: the newest whole-table update (agency mapping, md stop
reasons) each consumer has applied, so an older one arriving late is ignored

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for schema in ("stats", "ingest"):
        op.create_table(
            "applied_updates",
            sa.Column("kind", sa.String(32), primary_key=True),
            sa.Column("state", sa.String(2), primary_key=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            schema=schema,
        )


def downgrade() -> None:
    for schema in ("stats", "ingest"):
        op.drop_table("applied_updates", schema=schema)
