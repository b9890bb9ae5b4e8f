"""The summary tables every per-agency endpoint reads, built from a state's
live schema.

`stats.nc_stop_summary` has one row per combination of what the endpoints
group or filter by, with the number of stops:

    agency_id, officer_id, year, month, purpose, race, ethnicity, searched,
    search_types (bit t set when the stop had a search of type t),
    engage_force (searched and the officer engaged force),
    contraband (searched and contraband was found),
    arrested (the driver was arrested),
    contraband_types (bit t set when a searched stop found type t), stops

Only drivers are counted, one per stop (a stop's driver is its first person
of type D; a stop without one is not counted), so every family of counts
sums to the stops of its row. The year and month are taken in the state's
time zone (month is NULL for a state with years only). Roll-ups over
officers (`<state>_agency_summary`) and over agencies too
(`<state>_state_summary`, the statewide endpoints) are built beside it.

The summary is built in LANES, one range of stop ids each, on connections
of their own, so the build uses every core the database has; a combination
whose stops fall in two ranges has a row from each. Every reader sums
`stops`, so that changes no number; the roll-ups have one row per
combination.
"""

from __future__ import annotations

from itertools import pairwise

from services.stats.registry import STATE_STATS
from shared.db import READER_ROLE, lock_for_swap
from shared.states import STATES

# How many ranges of stops the summary is built in at once: one a core of
# the database server (two here), each on its own connection.
LANES = 2
# What each build connection may hold in memory per sort or hash before it
# spills to disk: the summary's aggregate holds about 150 bytes a row.
BUILD_WORK_MEM = "256MB"

SUMMARY_COLUMNS = ("agency_id", "officer_id", "year", "month", "purpose", "race", "ethnicity",
                   "searched", "search_types", "engage_force", "contraband", "arrested",
                   "contraband_types", "stops")
GROUPED = ("year", "month", "purpose", "race", "ethnicity", "searched", "search_types",
           "engage_force", "contraband", "arrested", "contraband_types")

# Without an officer filter the endpoints read this roll-up of the summary
# over officers: a tenth of its rows for a large agency; the statewide
# endpoints read the roll-up over agencies too.
ROLLUP = """
CREATE TABLE {table} AS
SELECT {keys}, sum(stops)::integer AS stops
FROM {summary}
GROUP BY {keys}
"""
YEARLY = tuple(column for column in GROUPED if column != "month")
# What the officer ranking reads: officers by year, driver and search.
OFFICER_KEYS = ("agency_id", "officer_id", "year", "race", "ethnicity", "searched")


# The agencies the published numbers speak of: the API lists these, so the
# list changes with the numbers, not when the ingest swap lands before them.
# The operators' mapping gives display names and census GEO_IDs, and through
# the GEO_ID the newest census profile (API.md's `other` is the sum of some
# other race, native Hawaiian and two or more races); the date of
# each agency's latest stop feeds admin's compliance report (il has years only).
LAST_STOP = "(SELECT max(stop.date) FROM {state}.stop WHERE stop.agency_id = agency.id)"
NO_DATES = "NULL::timestamptz"
# The residents by the disparity groups (ACS B03002, API.md): beside the
# profile the agency detail serves, for the stop-rate ratio.
POPULATION = """jsonb_build_object(
               'white', pop_white, 'black', pop_black, 'hispanic', pop_hispanic,
               'asian', pop_asian, 'native_american', pop_native_american,
               'other', pop_other)"""
AGENCY_SNAPSHOT = """
CREATE TABLE {table} AS
SELECT agency.id, coalesce(mapping.name, agency.name) AS name, mapping.geoid,
       {last_stop} AS last_stop_at, profile.census_profile, profile.population
FROM {state}.agency
LEFT JOIN stats.agency_mappings AS mapping
       ON mapping.state = '{state}' AND mapping.code = agency.name
LEFT JOIN LATERAL (
    SELECT jsonb_build_object(
               'white', white, 'black', black, 'native_american', native_american,
               'asian', asian,
               'other', other + native_hawaiian + two_or_more_races,
               'hispanic', hispanic, 'non_hispanic', non_hispanic, 'total', total,
               'year', year) AS census_profile,
           """ + POPULATION + """ AS population
    FROM census.profiles WHERE profiles.geoid = mapping.geoid
    ORDER BY year DESC LIMIT 1
) AS profile ON true
"""
# The state's own profile (geoid 0400000US<fips>), for statewide figures.
STATE_PROFILE = """
CREATE TABLE {table} AS
SELECT year, """ + POPULATION + """ AS population
FROM census.profiles WHERE geoid = '0400000US{fips}'
ORDER BY year DESC LIMIT 1
"""


def agencies_table(state: str) -> str:
    return f"stats.{state}_agencies"


def summary_table(state: str) -> str:
    """Stops by agency and officer (and every other grouping the API needs)."""
    return f"stats.{state}_stop_summary"


def agency_table(state: str) -> str:
    """The same, rolled up over officers."""
    return f"stats.{state}_agency_summary"


def statewide_table(state: str) -> str:
    """The same, rolled up over agencies too."""
    return f"stats.{state}_state_summary"


def agency_year_table(state: str) -> str:
    """The agency roll-up without months: what a request by year reads."""
    return f"stats.{state}_agency_year_summary"


def statewide_year_table(state: str) -> str:
    return f"stats.{state}_state_year_summary"


def officer_year_table(state: str) -> str:
    """Officers by year, driver and search, for the officer ranking."""
    return f"stats.{state}_officer_year_summary"


def state_profile_table(state: str) -> str:
    """The state's own census population (one row, or none)."""
    return f"stats.{state}_state_profile"


def building_agencies(state: str) -> str:
    """The agency snapshot a refresh is building, before the swap."""
    return _building(agencies_table(state))


def _building(table: str) -> str:
    return f"{table}_building"


def _index_names(table: str) -> dict[str, str]:
    name = table.split(".")[1]
    return {f"{name}_building_key": f"{name}_key"}


# What a new mapping or new census profiles change; the rest is the counts.
AGENCY_TABLES = (agencies_table, state_profile_table)
# The summary and its roll-ups, in build order: (table, built from, keys,
# index). Each roll-up adds up the smallest table that has its keys.
COUNT_TABLES = (
    (summary_table, None, None, "agency_id, officer_id"),
    (agency_table, summary_table, ("agency_id", *GROUPED), "agency_id, year"),
    (agency_year_table, agency_table, ("agency_id", *YEARLY), "agency_id, year"),
    (statewide_table, agency_table, GROUPED, "year"),
    (statewide_year_table, agency_year_table, YEARLY, "year"),
    (officer_year_table, summary_table, OFFICER_KEYS, "agency_id, officer_id"),
)
LIVE_TABLES = (*(table for table, *_ in COUNT_TABLES), *AGENCY_TABLES)
# The roll-ups a refresh builds beside the agency chain (stats/refresh.py).
SIDE_ROLLUPS = (officer_year_table,)
CHAIN_ROLLUPS = tuple(table for table, source, *_ in COUNT_TABLES
                      if source is not None and table not in SIDE_ROLLUPS)


def outdated(conn, state: str) -> bool:
    """Whether the state's live tables are of an older build than this code
    reads (a table missing, or the summary's columns not SUMMARY_COLUMNS): a
    new version of the platform rebuilds them before serving from them."""
    if any(conn.exec_driver_sql(f"SELECT to_regclass('{table(state)}')").scalar() is None
           for table in LIVE_TABLES):
        return True
    schema, name = summary_table(state).split(".")
    columns = conn.exec_driver_sql(
        "SELECT array_agg(column_name::text ORDER BY ordinal_position) "
        f"FROM information_schema.columns WHERE table_schema = '{schema}' "
        f"AND table_name = '{name}'").scalar()
    return tuple(columns or ()) != SUMMARY_COLUMNS


def drop_building(conn, state: str) -> None:
    """Every building table of the state: what a failed build leaves."""
    for table in reversed(LIVE_TABLES):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_building(table(state))}")


def create_summary(conn, state: str) -> list[str]:
    """The summary's building table, empty, every earlier building count
    table gone (the agency tables are build_agencies', which may run
    meanwhile); the lanes to fill it in (fill_summary), each a condition on
    stop_id. Its index and statistics come with finish_summary (the
    roll-ups need neither, so they can be built meanwhile)."""
    for table, *_ in reversed(COUNT_TABLES):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_building(table(state))}")
    conn.exec_driver_sql(f"CREATE TABLE {_building(summary_table(state))} AS "
                         f"{_summary_select(state, 'false')} WITH NO DATA")
    return _lanes(conn, state)


def fill_summary(conn, state: str, stops: str) -> None:
    """Add the summary rows of the stops `stops` (one of create_summary's
    lanes); lanes may be filled at once, on connections of their own."""
    conn.exec_driver_sql(f"INSERT INTO {_building(summary_table(state))} "
                         f"{_summary_select(state, stops)}")


def _summary_select(state: str, stops: str) -> str:
    return STATE_STATS[state].summary.format(time_zone=STATES[state].time_zone, stops=stops)


def _lanes(conn, state: str) -> list[str]:
    """LANES ranges of stop_id with about as many stops each: the bounds are
    quantiles of a sample of the table's pages (a few milliseconds at any
    size; a lane a little larger than another costs time, not numbers)."""
    shares = ", ".join(str(lane / LANES) for lane in range(1, LANES))
    bounds = conn.exec_driver_sql(
        f"SELECT percentile_disc(ARRAY[{shares}]) WITHIN GROUP (ORDER BY stop_id) "
        f"FROM {state}.stop TABLESAMPLE SYSTEM (1) REPEATABLE (0)").scalar()
    if not bounds or None in bounds:
        # Too few pages to sample (a small release): split the id range.
        low, high = conn.exec_driver_sql(f"SELECT min(stop_id), max(stop_id) FROM {state}.stop"
                                         ).one()
        if low is None:
            return ["true"]
        bounds = [low + (high - low) * lane // LANES for lane in range(1, LANES)]
    return lane_conditions(bounds)


def lane_conditions(bounds) -> list[str]:
    """Conditions on stop_id that put every id in exactly one lane, split at
    `bounds` (a bound repeated makes no empty lane)."""
    bounds = sorted(set(bounds))
    if not bounds:
        return ["true"]
    lanes = [f"stop_id < {bounds[0]}"]
    lanes += [f"stop_id >= {low} AND stop_id < {high}" for low, high in pairwise(bounds)]
    return lanes + [f"stop_id >= {bounds[-1]}"]


def finish_summary(conn, state: str) -> None:
    _finish(conn, _building(summary_table(state)), COUNT_TABLES[0][3])


def build_rollups(conn, state: str, tables) -> None:
    """The roll-ups `tables` (of COUNT_TABLES, in its order), from the
    building tables they add up."""
    for table, source, keys, index in COUNT_TABLES:
        if table in tables:
            building = _building(table(state))
            conn.exec_driver_sql(ROLLUP.format(table=building, keys=", ".join(keys),
                                               summary=_building(source(state))))
            _finish(conn, building, index)


def build_agencies(conn, state: str) -> None:
    """Build the agency snapshot and the state's profile alone under their
    building names: what a new mapping or new census profiles change."""
    names, profile = (_building(table(state)) for table in AGENCY_TABLES)
    for table in (names, profile):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    last_stop = (LAST_STOP if STATES[state].has_dates else NO_DATES).format(state=state)
    conn.exec_driver_sql(AGENCY_SNAPSHOT.format(table=names, state=state, last_stop=last_stop))
    conn.exec_driver_sql(STATE_PROFILE.format(table=profile, fips=STATES[state].fips))
    _finish(conn, names, "id")
    _finish(conn, profile, None)


def _finish(conn, table: str, columns: str | None) -> None:
    (index,) = _index_names(table.removesuffix("_building"))
    if columns:
        conn.exec_driver_sql(f"CREATE INDEX {index} ON {table} ({columns})")
    # Fresh statistics now: the planner's guesses for a new table are off by
    # orders of magnitude until autovacuum comes by.
    conn.exec_driver_sql(f"ANALYZE {table}")
    conn.exec_driver_sql(f"GRANT SELECT ON {table} TO {READER_ROLE}")


def swap(conn, state: str, tables=LIVE_TABLES) -> None:
    """Put the built summaries in place of the live ones (caller's transaction,
    which must hold no lock a reader waits for: shared.db.lock_for_swap)."""
    lock_for_swap(conn, [table(state) for table in LIVE_TABLES if table in tables])
    for live in (table(state) for table in tables):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {live}")
        conn.exec_driver_sql(f"ALTER TABLE {_building(live)} RENAME TO {live.split('.')[1]}")
        for building_index, index in _index_names(live).items():
            conn.exec_driver_sql(f"ALTER INDEX IF EXISTS stats.{building_index} "
                                 f"RENAME TO {index}")
