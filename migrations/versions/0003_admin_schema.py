"""admin schema: datasets, imports, agency mappings, operator tokens, mails,
outbox, the last refresh seen per state; stats' copy of the agency mappings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _agency_mappings(schema: str) -> None:
    op.create_table(
        "agency_mappings",
        sa.Column("state", sa.String(2), primary_key=True),
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("geoid", sa.Text),
        schema=schema,
    )


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS admin")
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(2), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("date_added", sa.Date, nullable=False, server_default=sa.func.current_date()),
        sa.Column("date_received", sa.Date, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("destination", sa.Text),
        sa.Column("report_email_1", sa.Text),
        sa.Column("report_email_2", sa.Text),
        sa.UniqueConstraint("name", name="datasets_name_key"),
        sa.UniqueConstraint("url", name="datasets_url_key"),
        schema="admin",
    )
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.Integer,
                  sa.ForeignKey("admin.datasets.id", ondelete="SET NULL")),
        sa.Column("state", sa.String(2), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("destination", sa.Text),
        sa.Column("dataset_name", sa.Text, nullable=False),
        sa.Column("report_to", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.Text),
        sa.Column("progress_done", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("progress_total", sa.BigInteger),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("data_version", sa.BigInteger),
        sa.Column("counts", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("rejected_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejects_file", sa.Text),
        sa.Column("new_agencies", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("error", sa.Text),
        schema="admin",
    )
    op.create_index("imports_state_status", "imports", ["state", "status"], schema="admin")
    _agency_mappings("admin")
    op.create_table(
        "operator_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("token_sha256", name="operator_tokens_token_sha256_key"),
        schema="admin",
    )
    op.create_table(
        "mails",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("import_id", sa.Integer),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipients", postgresql.JSONB, nullable=False),
        sa.Column("content", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("last_error", sa.Text),
        schema="admin",
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
        schema="admin",
    )
    op.create_table(
        "refreshes",
        sa.Column("state", sa.String(2), primary_key=True),
        sa.Column("data_version", sa.BigInteger, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        schema="admin",
    )
    _agency_mappings("stats")


def downgrade() -> None:
    op.drop_table("agency_mappings", schema="stats")
    op.execute("DROP SCHEMA admin CASCADE")
