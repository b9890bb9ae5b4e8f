"""The `md` schema: tables filled by COPY, then keys, indexes and foreign keys.

As for nc (services/ingest/nc/schema.py), tables are created bare so COPY
runs at full speed and constraints come after the data. `{schema}` is the
staging schema being built.

`stop.stop_id` is the row's number in the workbook (1 = the first data row;
see services/ingest/md/format.py), `date` the stop's local date and time,
`purpose` an MD_PURPOSES code, `race` a COMBINED_RACES code, `age` 0 when
unknown, and `stop_reason` the STOP_REASON citation as given (trimmed).
"""

from services.ingest.agencies import AGENCY_TABLE
from services.ingest.md.format import WORKBOOK

TABLES = AGENCY_TABLE + """
CREATE TABLE {schema}.stop (
    stop_id bigint NOT NULL,
    agency_id integer NOT NULL,
    date timestamptz NOT NULL,
    purpose smallint NOT NULL,
    race char(1) NOT NULL,
    gender char(1) NOT NULL,
    age smallint NOT NULL,
    searched boolean NOT NULL,
    contraband boolean NOT NULL,
    officer_id text,
    stop_reason text
);
"""

COPY_TABLES = {WORKBOOK: "stop"}

TABLE_KEYS = {
    "stop": (
        "ALTER TABLE {schema}.stop ADD PRIMARY KEY (stop_id)",
        "CREATE INDEX stop_agency_date ON {schema}.stop (agency_id, date)",
        "ANALYZE {schema}.stop",
        "ANALYZE {schema}.agency",
    ),
}

FOREIGN_KEYS = {
    "stop": (
        "ALTER TABLE {schema}.stop ADD FOREIGN KEY (agency_id) REFERENCES {schema}.agency",
    ),
}
