"""census.profiles: the population counts of the disparities (API.md), from
ACS table B03002 for every state: pop_white, pop_black, pop_native_american,
pop_asian, pop_other (native Hawaiian + some other race + two or more races)
and pop_hispanic; 0 for the profiles stored before (a census refresh fills
them)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

POPULATION = ("pop_white", "pop_black", "pop_native_american", "pop_asian", "pop_other",
              "pop_hispanic")


def upgrade() -> None:
    for name in POPULATION:
        op.add_column("profiles", sa.Column(name, sa.Integer, nullable=False,
                                            server_default="0"), schema="census")


def downgrade() -> None:
    for name in reversed(POPULATION):
        op.drop_column("profiles", name, schema="census")
