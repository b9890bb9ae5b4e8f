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
    Date,
    DateTime,
    ForeignKey,
    Index,
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
    table = Table(
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
    # The relay's query: pending rows in id order. Rows are never deleted, so
    # without it every relay tick reads the whole table.
    Index("outbox_pending", table.c.id, postgresql_where=table.c.published_at.is_(None))
    return table


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


def agency_mappings_table(schema: str) -> Table:
    """Raw agency code (md, il) or description (nc) -> display name and census
    GEO_ID. Admin owns the operators' uploads; stats keeps the copy the
    events carry, which its agency snapshot applies."""
    return Table(
        "agency_mappings",
        metadata,
        Column("state", String(2), primary_key=True),
        Column("code", Text, primary_key=True),
        Column("name", Text, nullable=False),
        Column("geoid", Text),
        schema=schema,
    )


stats_agency_mappings = agency_mappings_table("stats")

# The admin service's schema: what operators register and ask for.
datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(2), nullable=False),
    Column("name", Text, nullable=False, unique=True),
    Column("date_added", Date, nullable=False, server_default=func.current_date()),
    Column("date_received", Date, nullable=False),
    Column("url", Text, nullable=False, unique=True),
    Column("destination", Text),
    Column("report_email_1", Text),
    Column("report_email_2", Text),
    schema="admin",
)

# One row per import asked for. The dataset's url, destination and report
# addresses are copied in, so replacing a dataset (the nightly nc import
# does) never changes what a past import was.
imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("admin.datasets.id", ondelete="SET NULL")),
    Column("state", String(2), nullable=False),
    Column("url", Text, nullable=False),
    Column("destination", Text),
    Column("dataset_name", Text, nullable=False),
    Column("report_to", JSONB, nullable=False, server_default="[]"),
    Column("status", String(16), nullable=False),
    Column("phase", Text),
    Column("progress_done", BigInteger, nullable=False, server_default="0"),
    Column("progress_total", BigInteger),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Set when import_requested went into the outbox: the state's turn came.
    Column("dispatched_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("data_version", BigInteger),
    Column("counts", JSONB, nullable=False, server_default="{}"),
    Column("rejected_rows", Integer, nullable=False, server_default="0"),
    Column("rejects_file", Text),
    Column("new_agencies", JSONB, nullable=False, server_default="[]"),
    Column("error", Text),
    # The listing's filters and each state's turn (services/admin/imports.py).
    Index("imports_state_status", "state", "status"),
    schema="admin",
)

# The newest stats refresh admin has heard of, per state: stats_refreshed and
# dataset_loaded travel on different queues, so either may arrive first.
refreshes = Table(
    "refreshes",
    metadata,
    Column("state", String(2), primary_key=True),
    Column("data_version", BigInteger, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
    schema="admin",
)

admin_agency_mappings = agency_mappings_table("admin")

operator_tokens = Table(
    "operator_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("label", Text, nullable=False),
    # Only the SHA-256 of a token is kept; the token itself is never stored.
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    schema="admin",
)

# Mails are queued in the transaction that decides to send them and sent
# afterwards, so an SMTP outage delays a report instead of losing it.
mails = Table(
    "mails",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("import_id", Integer),
    Column("kind", String(32), nullable=False),
    Column("recipients", JSONB, nullable=False),
    # What the message is built from when it is sent: the dataset and import
    # records as they were, and the kind's own data (agencies, for example).
    Column("content", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False,
           server_default=func.now()),
    Column("last_error", Text),
    schema="admin",
)

admin_outbox = outbox_table("admin")


def md_stop_reasons_table(schema: str) -> Table:
    """Maryland's statute stem -> purpose table when an operator replaced the
    project's default (shared/data/md_stop_reasons.csv): admin keeps what it
    accepted, ingest the copy `stop_reasons_updated` carried, which it applies."""
    return Table(
        "md_stop_reasons",
        metadata,
        Column("stem", Text, primary_key=True),
        Column("purpose", Text, nullable=False),
        schema=schema,
    )


admin_md_stop_reasons = md_stop_reasons_table("admin")
ingest_md_stop_reasons = md_stop_reasons_table("ingest")


# The census service's schema: ACS 5-year profiles by year and GEO_ID, for
# every county and place of the three states and each state itself; several
# years may be kept. The first counts are the fields of the state's table
# (DATA-FORMATS.md, "Census"; the agency detail's census_profile); the
# population counts are the disparities' (API.md), from table B03002 for every
# state (non-Hispanic races, pop_other being native Hawaiian, some other race
# and two or more races; and Hispanics), defaulting to 0 for rows stored before
# they existed (migration 0008).
CENSUS_POPULATION = ("pop_white", "pop_black", "pop_native_american", "pop_asian",
                     "pop_other", "pop_hispanic")
CENSUS_COUNTS = ("total", "white", "black", "native_american", "asian", "native_hawaiian",
                 "other", "two_or_more_races", "hispanic", "non_hispanic", *CENSUS_POPULATION)

census_profiles = Table(
    "profiles",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("geoid", Text, primary_key=True),
    Column("state", String(2), nullable=False),
    Column("name", Text, nullable=False),
    *(Column(name, Integer, nullable=False,
             server_default="0" if name in CENSUS_POPULATION else None)
      for name in CENSUS_COUNTS),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    schema="census",
)

# One row per refresh asked for, so a redelivered request is not fetched twice.
census_loads = Table(
    "loads",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("years", JSONB, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("profiles", Integer),
    Column("error", Text),
    schema="census",
)

census_outbox = outbox_table("census")

# Admin's record of each census refresh an operator asked for, followed to
# its end through census_loaded and census_failed.
census_refreshes = Table(
    "census_refreshes",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("years", JSONB),
    Column("status", String(16), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("profiles", Integer),
    Column("error", Text),
    schema="admin",
)


def applied_updates_table(schema: str) -> Table:
    """The `updated_at` of the newest whole-table update a consumer applied
    (shared/updates.py)."""
    return Table(
        "applied_updates",
        metadata,
        Column("kind", String(32), primary_key=True),
        Column("state", String(2), primary_key=True),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        schema=schema,
    )


stats_applied_updates = applied_updates_table("stats")
ingest_applied_updates = applied_updates_table("ingest")
