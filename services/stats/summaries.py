"""The summary tables every per-agency endpoint reads, built from a state's
live schema.

`stats.nc_stop_summary` has one row per combination of what the endpoints
group or filter by, with the number of stops:

    agency_id, officer_id, year, purpose, race, ethnicity, searched,
    search_types (bit t set when the stop had a search of type t),
    engage_force (searched and the officer engaged force),
    contraband (searched and contraband was found), stops

Only drivers are counted, one per stop (a stop's driver is its first person
of type D; a stop without one is not counted), so every family of counts
sums to the stops of its row. The year is taken in the state's time zone.
"""

from __future__ import annotations

from services.stats.registry import STATE_STATS
from shared.db import READER_ROLE
from shared.states import STATES

SUMMARY_COLUMNS = ("agency_id", "officer_id", "year", "purpose", "race", "ethnicity",
                   "searched", "search_types", "engage_force", "contraband", "stops")

# Without an officer filter the endpoints read this roll-up of the summary
# over officers: a tenth of its rows for a large agency.
AGENCY_ROLLUP = """
CREATE TABLE {table} AS
SELECT agency_id, year, purpose, race, ethnicity, searched, search_types, engage_force,
       contraband, sum(stops)::integer AS stops
FROM {summary}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
"""


# The agencies the published numbers speak of: the API lists these, so the
# list changes with the numbers, not when the ingest swap lands before them.
# The operators' mapping gives display names and census GEO_IDs, and through
# the GEO_ID the newest census profile (API.md's `other` is the sum of some
# other race, native Hawaiian and two or more races); the date of
# each agency's latest stop feeds admin's compliance report (il has years only).
LAST_STOP = "(SELECT max(stop.date) FROM {state}.stop WHERE stop.agency_id = agency.id)"
NO_DATES = "NULL::timestamptz"
AGENCY_SNAPSHOT = """
CREATE TABLE {table} AS
SELECT agency.id, coalesce(mapping.name, agency.name) AS name, mapping.geoid,
       {last_stop} AS last_stop_at, profile.census_profile
FROM {state}.agency
LEFT JOIN stats.agency_mappings AS mapping
       ON mapping.state = '{state}' AND mapping.code = agency.name
LEFT JOIN LATERAL (
    SELECT jsonb_build_object(
               'white', white, 'black', black, 'native_american', native_american,
               'asian', asian,
               'other', other + native_hawaiian + two_or_more_races,
               'hispanic', hispanic, 'non_hispanic', non_hispanic, 'total', total,
               'year', year) AS census_profile
    FROM census.profiles WHERE profiles.geoid = mapping.geoid
    ORDER BY year DESC LIMIT 1
) AS profile ON true
"""


def agencies_table(state: str) -> str:
    return f"stats.{state}_agencies"


def summary_table(state: str) -> str:
    """Stops by agency and officer (and every other grouping the API needs)."""
    return f"stats.{state}_stop_summary"


def agency_table(state: str) -> str:
    """The same, rolled up over officers."""
    return f"stats.{state}_agency_summary"


def building_agencies(state: str) -> str:
    """The agency snapshot a refresh is building, before the swap."""
    return _building(agencies_table(state))


def _building(table: str) -> str:
    return f"{table}_building"


def _index_names(table: str) -> dict[str, str]:
    name = table.split(".")[1]
    return {f"{name}_building_key": f"{name}_key"}


LIVE_TABLES = (summary_table, agency_table, agencies_table)


def build(conn, state: str) -> None:
    """Build the state's summaries under their building names."""
    summary, rollup, _ = (_building(table(state)) for table in LIVE_TABLES)
    for table in (rollup, summary):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    conn.exec_driver_sql(STATE_STATS[state].summary.format(
        table=summary, time_zone=STATES[state].time_zone))
    conn.exec_driver_sql(AGENCY_ROLLUP.format(table=rollup, summary=summary))
    _finish(conn, summary, "agency_id, officer_id")
    _finish(conn, rollup, "agency_id, year")
    build_agencies(conn, state)


def build_agencies(conn, state: str) -> None:
    """Build the agency snapshot alone under its building name: what a new
    mapping or new census profiles change."""
    names = building_agencies(state)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {names}")
    last_stop = (LAST_STOP if STATES[state].has_dates else NO_DATES).format(state=state)
    conn.exec_driver_sql(AGENCY_SNAPSHOT.format(table=names, state=state, last_stop=last_stop))
    _finish(conn, names, "id")


def _finish(conn, table: str, columns: str) -> None:
    (index,) = _index_names(table.removesuffix("_building"))
    conn.exec_driver_sql(f"CREATE INDEX {index} ON {table} ({columns})")
    # Fresh statistics now: the planner's guesses for a new table are off by
    # orders of magnitude until autovacuum comes by.
    conn.exec_driver_sql(f"ANALYZE {table}")
    conn.exec_driver_sql(f"GRANT SELECT ON {table} TO {READER_ROLE}")


def swap(conn, state: str, tables=LIVE_TABLES) -> None:
    """Put the built summaries in place of the live ones (caller's transaction)."""
    for live in (table(state) for table in tables):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {live}")
        conn.exec_driver_sql(f"ALTER TABLE {_building(live)} RENAME TO {live.split('.')[1]}")
        for building_index, index in _index_names(live).items():
            conn.exec_driver_sql(f"ALTER INDEX stats.{building_index} RENAME TO {index}")
