"""Tables that persist across imports, defined once for the code and Alembic.

The state schemas (`nc`, `md`, `il`) are not here: an import builds them
fresh in a staging schema and swaps them in whole (services/ingest). What
must outlive a swap lives in the `ingest` schema:

- `agency_ids`: the id each agency name has been given, so ids stay stable;
- `import_runs`: one row per import request handled, so a redelivered
  request is not loaded twice;
- `outbox`: events written in the same transaction as the change they
  announce, published afterwards.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

agency_ids = Table(
    "agency_ids",
    metadata,
    Column("state", String(2), primary_key=True),
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("state", "name", name="agency_ids_state_name_key"),
    schema="ingest",
)

import_runs = Table(
    "import_runs",
    metadata,
    Column("import_id", String(64), primary_key=True),
    Column("state", String(2), nullable=False),
    Column("url", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("data_version", BigInteger),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", JSONB),
    Column("error", Text),
    schema="ingest",
)

def outbox_table(schema: str) -> Table:
    """The outbox of the service owning `schema` (shared/outbox.py)."""
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("source", String(64), nullable=False),
        Column("event_type", String(64), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False,
               server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        schema=schema,
    )


outbox = outbox_table("ingest")

# The stats service's schema: the state's current generation (bumped by
# every refresh, part of every cache key and ETag) and its landing facts.
# The summary tables (`stats.<state>_stop_summary`) are rebuilt whole on
# each refresh and swapped in by rename (services/stats).
generations = Table(
    "generations",
    metadata,
    Column("state", String(2), primary_key=True),
    Column("generation", Integer, nullable=False),
    Column("data_version", BigInteger, nullable=False),
    Column("import_id", String(64), nullable=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema="stats",
)

facts = Table(
    "facts",
    metadata,
    Column("state", String(2), primary_key=True),
    Column("facts", JSONB, nullable=False),
    schema="stats",
)

stats_outbox = outbox_table("stats")
