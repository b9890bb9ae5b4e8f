"""census schema: ACS profiles by year and GEO_ID, refresh requests, outbox;
admin's record of census refreshes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COUNTS = ("total", "white", "black", "native_american", "asian", "native_hawaiian",
          "other", "two_or_more_races", "hispanic", "non_hispanic")


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS census")
    op.create_table(
        "profiles",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("geoid", sa.Text, primary_key=True),
        sa.Column("state", sa.String(2), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in COUNTS),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        schema="census",
    )
    op.create_table(
        "loads",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("years", postgresql.JSONB, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("profiles", sa.Integer),
        sa.Column("error", sa.Text),
        schema="census",
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
        schema="census",
    )
    op.create_table(
        "census_refreshes",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("years", postgresql.JSONB),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("profiles", sa.Integer),
        sa.Column("error", sa.Text),
        schema="admin",
    )


def downgrade() -> None:
    op.drop_table("census_refreshes", schema="admin")
    op.execute("DROP SCHEMA census CASCADE")
