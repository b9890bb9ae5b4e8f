"""stats schema: generations, landing facts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS stats")
    op.create_table(
        "generations",
        sa.Column("state", sa.String(2), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("data_version", sa.BigInteger, nullable=False),
        sa.Column("import_id", sa.String(64), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        schema="stats",
    )
    op.create_table(
        "facts",
        sa.Column("state", sa.String(2), primary_key=True),
        sa.Column("facts", postgresql.JSONB, nullable=False),
        schema="stats",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema="stats",
    )
    op.execute("GRANT USAGE ON SCHEMA stats TO odp_reader")
    op.execute("GRANT SELECT ON stats.generations, stats.facts TO odp_reader")


def downgrade() -> None:
    op.execute("DROP SCHEMA stats CASCADE")
