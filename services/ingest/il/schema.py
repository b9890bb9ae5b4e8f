"""The `il` schema: tables filled by COPY, then keys, indexes and foreign keys.

As for nc (services/ingest/nc/schema.py), the tables are created bare so
COPY runs at full speed, and the constraints come after the data. `{schema}`
is the staging schema being built. `agency` is filled by the pipeline with
the agencies the stops named (name = the raw agencycode); `searched` and
`contraband` are 'Y', 'N' or 'U' (unknown: the release left them empty).
"""

from services.ingest.agencies import AGENCY_TABLE
from services.ingest.il.format import CSV_FILE

TABLES = AGENCY_TABLE + """
CREATE TABLE {schema}.stop (
    stop_id bigint NOT NULL,
    agency_id integer NOT NULL,
    year smallint NOT NULL,
    purpose smallint NOT NULL,
    race char(1) NOT NULL,
    gender char(1) NOT NULL,
    searched char(1) NOT NULL,
    contraband char(1) NOT NULL
);
"""

COPY_TABLES = {CSV_FILE: "stop"}

TABLE_KEYS = {
    "stop": (
        "ALTER TABLE {schema}.stop ADD PRIMARY KEY (stop_id)",
        "CREATE INDEX stop_agency_year ON {schema}.stop (agency_id, year)",
        "ANALYZE {schema}.stop",
        "ANALYZE {schema}.agency",
    ),
}

FOREIGN_KEYS = {
    "stop": (
        "ALTER TABLE {schema}.stop ADD FOREIGN KEY (agency_id) REFERENCES {schema}.agency",
    ),
}
