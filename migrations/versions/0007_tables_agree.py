"""outbox_pending on every outbox: the relay's pending-rows index, which only
the ingest outbox had (0001); the stats, admin and census relays read the
same way

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# ingest.outbox has had it since 0001.
SCHEMAS = ("stats", "admin", "census")


def upgrade() -> None:
    for schema in SCHEMAS:
        op.create_index("outbox_pending", "outbox", ["id"], schema=schema,
                        postgresql_where=sa.text("published_at IS NULL"))


def downgrade() -> None:
    for schema in reversed(SCHEMAS):
        op.drop_index("outbox_pending", table_name="outbox", schema=schema)
