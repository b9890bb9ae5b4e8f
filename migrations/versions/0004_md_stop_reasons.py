"""md stop reasons: the operators' statute-stem to purpose table, as admin
accepted it and as ingest applies it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _stop_reasons(schema: str) -> None:
    op.create_table(
        "md_stop_reasons",
        sa.Column("stem", sa.Text, primary_key=True),
        sa.Column("purpose", sa.Text, nullable=False),
        schema=schema,
    )


def upgrade() -> None:
    _stop_reasons("admin")
    _stop_reasons("ingest")


def downgrade() -> None:
    op.drop_table("md_stop_reasons", schema="ingest")
    op.drop_table("md_stop_reasons", schema="admin")
