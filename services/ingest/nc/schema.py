"""The `nc` schema: tables filled by COPY, then keys, indexes and foreign keys.

Tables are created bare so COPY runs at full speed; constraints come after
the data, when building them costs one sort per index instead of one
index update per row. `{schema}` is the staging schema being built.
"""

from services.ingest.agencies import AGENCY_TABLE
from services.ingest.nc.format import (
    CONTRABAND_FILE,
    PERSON_FILE,
    SEARCH_BASIS_FILE,
    SEARCH_FILE,
    STOP_FILE,
)

TABLES = AGENCY_TABLE + """
CREATE TABLE {schema}.stop (
    stop_id bigint NOT NULL,
    agency_id integer NOT NULL,
    date timestamptz NOT NULL,
    purpose smallint NOT NULL,
    action smallint NOT NULL,
    driver_arrest boolean,
    passenger_arrest boolean,
    encounter_force boolean,
    engage_force boolean,
    officer_injury boolean,
    driver_injury boolean,
    passenger_injury boolean,
    officer_id text,
    stop_location text NOT NULL,
    stop_city text NOT NULL
);
CREATE TABLE {schema}.person (
    person_id bigint NOT NULL,
    stop_id bigint NOT NULL,
    type char(1) NOT NULL,
    age smallint,
    gender char(1),
    ethnicity char(1) NOT NULL,
    race char(1) NOT NULL
);
CREATE TABLE {schema}.search (
    search_id bigint NOT NULL,
    stop_id bigint NOT NULL,
    person_id bigint NOT NULL,
    type smallint NOT NULL,
    vehicle_search boolean,
    driver_search boolean,
    passenger_search boolean,
    property_search boolean,
    vehicle_seized boolean,
    personal_property_seized boolean,
    other_property_seized boolean
);
CREATE TABLE {schema}.contraband (
    contraband_id bigint NOT NULL,
    search_id bigint NOT NULL,
    person_id bigint NOT NULL,
    stop_id bigint NOT NULL,
    ounces numeric,
    pounds numeric,
    pints numeric,
    gallons numeric,
    dosages numeric,
    grams numeric,
    kilos numeric,
    money numeric,
    weapons numeric,
    dollar_amount numeric
);
CREATE TABLE {schema}.search_basis (
    search_basis_id bigint NOT NULL,
    search_id bigint NOT NULL,
    person_id bigint NOT NULL,
    stop_id bigint NOT NULL,
    basis varchar(4) NOT NULL
);
"""

COPY_TABLES = {
    STOP_FILE: "stop",
    PERSON_FILE: "person",
    SEARCH_FILE: "search",
    CONTRABAND_FILE: "contraband",
    SEARCH_BASIS_FILE: "search_basis",
}

# Checking a small table's foreign keys by probing the big table's primary
# key costs a few index lookups per row; the planner's default, a hash join
# over the whole stop or person table, costs seconds per key on the full
# release. The settings last for the session that builds that table's keys.
PROBE_KEYS = (
    "SET enable_hashjoin = off",
    "SET enable_mergejoin = off",
)

# Once a table's COPY is done, its key, indexes and statistics are built on
# one connection while the next file loads...
TABLE_KEYS = {
    "stop": (
        "ALTER TABLE {schema}.stop ADD PRIMARY KEY (stop_id)",
        "CREATE INDEX stop_agency_date ON {schema}.stop (agency_id, date)",
        "ANALYZE {schema}.stop",
        "ANALYZE {schema}.agency",
    ),
    "person": (
        "ALTER TABLE {schema}.person ADD PRIMARY KEY (person_id)",
        "CREATE INDEX person_stop ON {schema}.person (stop_id)",
        "ANALYZE {schema}.person",
    ),
    "search": (
        "ALTER TABLE {schema}.search ADD PRIMARY KEY (search_id)",
        "CREATE INDEX search_stop ON {schema}.search (stop_id)",
        "ANALYZE {schema}.search",
    ),
    "contraband": (
        "ALTER TABLE {schema}.contraband ADD PRIMARY KEY (contraband_id)",
        "CREATE INDEX contraband_stop ON {schema}.contraband (stop_id)",
        "ANALYZE {schema}.contraband",
    ),
    "search_basis": (
        "ALTER TABLE {schema}.search_basis ADD PRIMARY KEY (search_basis_id)",
        "CREATE INDEX search_basis_search ON {schema}.search_basis (search_id)",
        "ANALYZE {schema}.search_basis",
    ),
}

# ...and its foreign keys on another, once its own key and those of the
# tables it refers to (loaded before it) exist.
FOREIGN_KEYS = {
    "stop": (
        "ALTER TABLE {schema}.stop ADD FOREIGN KEY (agency_id) REFERENCES {schema}.agency",
    ),
    "person": (
        "ALTER TABLE {schema}.person ADD FOREIGN KEY (stop_id) REFERENCES {schema}.stop",
    ),
    "search": (
        *PROBE_KEYS,
        "ALTER TABLE {schema}.search ADD FOREIGN KEY (stop_id) REFERENCES {schema}.stop",
        "ALTER TABLE {schema}.search ADD FOREIGN KEY (person_id) REFERENCES {schema}.person",
    ),
    "contraband": (
        *PROBE_KEYS,
        "ALTER TABLE {schema}.contraband ADD FOREIGN KEY (search_id) "
        "REFERENCES {schema}.search",
        "ALTER TABLE {schema}.contraband ADD FOREIGN KEY (stop_id) REFERENCES {schema}.stop",
        "ALTER TABLE {schema}.contraband ADD FOREIGN KEY (person_id) "
        "REFERENCES {schema}.person",
    ),
    "search_basis": (
        *PROBE_KEYS,
        "ALTER TABLE {schema}.search_basis ADD FOREIGN KEY (search_id) "
        "REFERENCES {schema}.search",
        "ALTER TABLE {schema}.search_basis ADD FOREIGN KEY (stop_id) "
        "REFERENCES {schema}.stop",
        "ALTER TABLE {schema}.search_basis ADD FOREIGN KEY (person_id) "
        "REFERENCES {schema}.person",
    ),
}
