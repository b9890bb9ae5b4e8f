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

from shared.states import PURPOSE_GROUPS, State


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


@dataclass(frozen=True)
class Scope:
    """Which stops a count speaks of: an agency's (or, with agency_id None,
    the whole state's), one officer's, between two months (inclusive,
    `year * 100 + month`; for a state with years only, `year * 100 + 1` to
    `year * 100 + 12`), by year or by month."""

    state: State
    agency_id: int | None = None
    officer: str | None = None
    first: int | None = None
    last: int | None = None
    by_month: bool = False

    @property
    def monthly(self) -> bool:
        """Whether the answer needs months: rows by month, or a range that
        starts or ends inside a year. Otherwise the yearly roll-ups answer,
        with a twelfth of the rows."""
        return self.by_month or (self.first is not None and self.first % 100 != 1) or (
            self.last is not None and self.last % 100 != 12)

    def table(self) -> str:
        # The smallest summary that answers (services/stats/summaries.py).
        state = self.state.code
        if self.officer is not None:
            return f"stats.{state}_stop_summary"
        scope = "state" if self.agency_id is None else "agency"
        return f"stats.{state}_{scope}_summary" if self.monthly else \
            f"stats.{state}_{scope}_year_summary"

    def officers_table(self) -> str:
        """Every officer of the agency, by race, ethnicity and search."""
        state = self.state.code
        return f"stats.{state}_stop_summary" if self.monthly else \
            f"stats.{state}_officer_year_summary"

    def conditions(self) -> list[str]:
        conditions = []
        if self.agency_id is not None:
            conditions.append("agency_id = :agency_id")
        if self.officer is not None:
            conditions.append("officer_id = :officer")
        # The year alone, which the summaries' indexes serve; the month only
        # where the range cuts a year.
        if self.first is not None:
            conditions.append("year >= :first_year")
            if self.first % 100 != 1:
                conditions.append("year * 100 + month >= :first")
        if self.last is not None:
            conditions.append("year <= :last_year")
            if self.last % 100 != 12:
                conditions.append("year * 100 + month <= :last")
        return conditions

    def params(self) -> dict:
        return {"agency_id": self.agency_id, "officer": self.officer,
                "first": self.first, "last": self.last,
                "first_year": None if self.first is None else self.first // 100,
                "last_year": None if self.last is None else self.last // 100}

    def period(self) -> str:
        if self.by_month:
            return "lpad(year::text, 4, '0') || '-' || lpad(month::text, 2, '0')"
        return "year"


def _purpose_group(state: State) -> str:
    """A purpose's group as its position in PURPOSE_GROUPS (1, 2, 3)."""
    cases = " ".join(
        f"WHEN purpose IN ({', '.join(map(str, codes))}) THEN {position}"
        for position, group in enumerate(PURPOSE_GROUPS, 1)
        if (codes := state.purpose_groups.get(group)))
    return f"(CASE {cases} END)"


# What a count can be grouped by besides the period: (code, join). A stop with
# searches of several types counts once under each of its types; likewise
# contraband types.
GROUPS = {
    None: lambda state: ("NULL::smallint", ""),
    "purpose": lambda state: ("purpose", ""),
    "purpose_group": lambda state: (_purpose_group(state), ""),
    "search_type": lambda state: ("search_type",
                                  "CROSS JOIN generate_series(1, 5) AS search_type"),
    "contraband_type": lambda state: ("contraband_type",
                                      "CROSS JOIN generate_series(0, 4) AS contraband_type"),
}

# Which stops a count takes, as a condition on the summary's columns.
SELECTIONS = {
    None: "true",
    "searched": "searched",
    "engage_force": "engage_force",
    "contraband": "contraband",
    "arrested": "arrested",
    "search_type": "search_types::integer & (1 << search_type) <> 0",
    "contraband_type": "contraband_types::integer & (1 << contraband_type) <> 0",
}


def stop_counts(conn: Connection, scope: Scope, group: str | None,
                selection: str | None) -> list:
    """(period, code, race, ethnicity, stops) rows of the scope's summary."""
    code, join = GROUPS[group](scope.state)
    conditions = [*scope.conditions(), SELECTIONS[selection]]
    sql = (f"SELECT {scope.period()} AS period, {code} AS code, race, ethnicity, "
           f"sum(stops)::bigint AS stops FROM {scope.table()} {join} "
           f"WHERE {' AND '.join(conditions)} "
           "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2")
    return conn.execute(text(sql), scope.params()).all()


def disparity_counts(conn: Connection, scope: Scope) -> list:
    """(race, ethnicity, stops, searches, hits) of the scope: searches are
    searched stops, hits searched stops where contraband was found."""
    sql = ("SELECT race, ethnicity, sum(stops)::bigint AS stops, "
           "coalesce(sum(stops) FILTER (WHERE searched), 0)::bigint AS searches, "
           "coalesce(sum(stops) FILTER (WHERE contraband), 0)::bigint AS hits "
           f"FROM {scope.table()} WHERE {' AND '.join(scope.conditions()) or 'true'} "
           "GROUP BY 1, 2")
    return conn.execute(text(sql), scope.params()).all()


def officer_counts(conn: Connection, scope: Scope) -> list:
    """(officer, race, ethnicity, stops, searches) of each officer of the
    scope's agency (the officer summary, whatever scope.officer says)."""
    sql = ("SELECT officer_id AS officer, race, ethnicity, sum(stops)::bigint AS stops, "
           "coalesce(sum(stops) FILTER (WHERE searched), 0)::bigint AS searches "
           f"FROM {scope.officers_table()} "
           f"WHERE officer_id IS NOT NULL AND {' AND '.join(scope.conditions())} "
           "GROUP BY 1, 2, 3")
    return conn.execute(text(sql), scope.params()).all()


def population(conn: Connection, state: str, agency_id: int | None) -> dict | None:
    """Residents by disparity group: the agency's census profile's, or the
    state's own (None when there is no profile)."""
    if agency_id is None:
        return conn.execute(text(f"SELECT population FROM stats.{state}_state_profile")
                            ).scalar()
    return conn.execute(text(f"SELECT population FROM stats.{state}_agencies WHERE id = :id"),
                        {"id": agency_id}).scalar()


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
