"""ingest schema: stable agency ids, import runs, outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ingest")
    op.create_table(
        "agency_ids",
        sa.Column("state", sa.String(2), primary_key=True),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.UniqueConstraint("state", "name", name="agency_ids_state_name_key"),
        schema="ingest",
    )
    op.create_table(
        "import_runs",
        sa.Column("import_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(2), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("data_version", sa.BigInteger),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("result", postgresql.JSONB),
        sa.Column("error", sa.Text),
        schema="ingest",
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
        schema="ingest",
    )
    op.create_index("outbox_pending", "outbox", ["id"], schema="ingest",
                    postgresql_where=sa.text("published_at IS NULL"))
    # One number for every load of any state, so consumers can tell an
    # older load's event from a newer one.
    op.execute("CREATE SEQUENCE ingest.data_version")


def downgrade() -> None:
    op.execute("DROP SCHEMA ingest CASCADE")
