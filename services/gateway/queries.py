"""Every SQL statement the gateway runs, each a function of a connection.

Aggregates and agencies read the tables each stats refresh rebuilds
(`stats.<state>_agency_summary`, `_stop_summary`, `_agencies`), so they
change together; find-a-stop reads the live state schema. Only the
state code and fixed fragments written here are put into SQL text; every
value a client sends is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Generation:
    """The state's stats generation, stamped with when it was made: the
    number alone starts again at 1 when a database is rebuilt, while the
    cache outlives it."""

    number: int
    refreshed_at: datetime

    @property
    def tag(self) -> str:
        return f"{self.number}.{int(self.refreshed_at.timestamp() * 1_000_000)}"


def generation(conn: Connection, state: str) -> Generation | None:
    row = conn.execute(text("SELECT generation, refreshed_at FROM stats.generations "
                            "WHERE state = :state"), {"state": state}).first()
    return Generation(row.generation, row.refreshed_at) if row else None


def agencies(conn: Connection, state: str) -> list[dict]:
    rows = conn.execute(text(f"SELECT id, name FROM stats.{state}_agencies ORDER BY name, id"))
    return [{"id": row.id, "name": row.name} for row in rows]


# API.md's order of a census profile's keys.
PROFILE_KEYS = ("white", "black", "native_american", "asian", "other", "hispanic",
                "non_hispanic", "total")


def agency(conn: Connection, state: str, agency_id: int) -> dict | None:
    """The agency with its census profile ({} when it has none)."""
    row = conn.execute(text(f"SELECT id, name, census_profile FROM stats.{state}_agencies "
                            "WHERE id = :id"), {"id": agency_id}).first()
    if row is None:
        return None
    profile = row.census_profile or {}
    return {"id": row.id, "name": row.name,
            "census_profile": {key: profile[key] for key in PROFILE_KEYS if key in profile}}


def facts(conn: Connection, state: str) -> dict | None:
    return conn.execute(text("SELECT facts FROM stats.facts WHERE state = :state"),
                        {"state": state}).scalar()


# What a count can be grouped by besides the year. A stop with searches of
# several types counts once under each of its types.
GROUPS = {
    None: ("NULL::smallint", ""),
    "purpose": ("purpose", ""),
    "search_type": ("search_type",
                    "CROSS JOIN generate_series(1, 5) AS search_type"),
}

# Which stops a count takes, as a condition on the summary's columns.
SELECTIONS = {
    None: "true",
    "searched": "searched",
    "engage_force": "engage_force",
    "contraband": "contraband",
    "search_type": "search_types::integer & (1 << search_type) <> 0",
}


def stop_counts(conn: Connection, state: str, agency_id: int, officer: str | None,
                group: str | None, selection: str | None) -> list:
    """(year, code, race, ethnicity, stops) rows of the agency's summary."""
    code, join = GROUPS[group]
    conditions = ["agency_id = :agency_id", SELECTIONS[selection]]
    # Without an officer, the roll-up over officers has far fewer rows to add.
    table = f"stats.{state}_agency_summary"
    if officer is not None:
        conditions.append("officer_id = :officer")
        table = f"stats.{state}_stop_summary"
    sql = (f"SELECT year, {code} AS code, race, ethnicity, sum(stops)::bigint AS stops "
           f"FROM {table} {join} "
           f"WHERE {' AND '.join(conditions)} "
           "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2")
    return conn.execute(text(sql), {"agency_id": agency_id, "officer": officer}).all()


@dataclass(frozen=True)
class StopFilters:
    agency_id: int
    officer: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    age: int | None = None
    gender: str | None = None
    race: str | None = None
    ethnicity: str | None = None
    purposes: tuple[int, ...] = ()
    actions: tuple[int, ...] = ()


# The driver is the stop's first person of type D, as in the summaries.
FIND_STOPS = """
SELECT stop.stop_id, stop.date, stop.agency_id, agency.name AS agency, stop.officer_id,
       stop.purpose, stop.action, driver.age, driver.gender, driver.race, driver.ethnicity,
       EXISTS (SELECT 1 FROM {state}.search WHERE search.stop_id = stop.stop_id) AS searched
FROM {state}.stop
JOIN {state}.agency ON agency.id = stop.agency_id
LEFT JOIN LATERAL (
    SELECT age, gender, race, ethnicity FROM {state}.person
    WHERE person.stop_id = stop.stop_id AND person.type = 'D'
    ORDER BY person.person_id LIMIT 1
) AS driver ON true
WHERE {conditions}
ORDER BY stop.date DESC, stop.stop_id DESC
LIMIT :limit OFFSET :offset
"""

STOP_CONDITIONS = {
    "officer": "stop.officer_id = :officer",
    "start": "stop.date >= :start",
    "end": "stop.date < :end",
    "age": "driver.age = :age",
    "gender": "driver.gender = :gender",
    "race": "driver.race = :race",
    "ethnicity": "driver.ethnicity = :ethnicity",
    "purposes": "stop.purpose = ANY(:purposes)",
    "actions": "stop.action = ANY(:actions)",
}


def find_stops(conn: Connection, state: str, filters: StopFilters, limit: int,
               offset: int) -> list:
    params = {name: getattr(filters, name) for name in STOP_CONDITIONS}
    params["purposes"] = list(filters.purposes)
    params["actions"] = list(filters.actions)
    conditions = ["stop.agency_id = :agency_id"] + [
        condition for name, condition in STOP_CONDITIONS.items()
        if params[name] not in (None, [])]
    sql = FIND_STOPS.format(state=state, conditions=" AND ".join(conditions))
    params.update(agency_id=filters.agency_id, limit=limit, offset=offset)
    return conn.execute(text(sql), params).all()
