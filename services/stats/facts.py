"""The landing-page facts of a state, in the shape of API.md:

    {"state": "nc", "start_date": "Jan 01, 2002", "end_date": "Apr 12, 2016",
     "total_stops": 20622253, "total_stops_millions": 20, "total_searches": 632719,
     "total_agencies": 314, "top_agencies": [{"rank": 1, "id": 193, ...}],
     "updated_at": "2026-11-27T20:00:00Z"}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from shared.states import NC_FIRST_DAY, State

Facts = Callable[..., dict]

DATE_FORMAT = "%b %d, %Y"


TOP_AGENCIES = """
SELECT agency.id, agency.name, top.stops FROM
    (SELECT agency_id, count(*) AS stops FROM {state}.stop GROUP BY agency_id
     ORDER BY stops DESC, agency_id LIMIT 5) AS top
JOIN {agencies} AS agency ON agency.id = top.agency_id
ORDER BY top.stops DESC, agency.id
"""


def _facts(conn, state: str, agencies: str, first, last, total_stops: int,
           total_agencies: int, total_searches: int) -> dict:
    top = conn.exec_driver_sql(TOP_AGENCIES.format(state=state, agencies=agencies)).all()
    return {
        "state": state,
        "start_date": first,
        "end_date": last,
        "total_stops": total_stops,
        "total_stops_millions": total_stops // 1_000_000,
        "total_searches": total_searches,
        "total_agencies": total_agencies,
        "top_agencies": [{"rank": rank, "id": row.id, "name": row.name, "stops": row.stops}
                         for rank, row in enumerate(top, 1)],
        "updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _dated(conn, state: State, searched: str) -> tuple:
    zone = state.time_zone
    return conn.exec_driver_sql(
        f"SELECT min(date AT TIME ZONE '{zone}')::date, max(date AT TIME ZONE '{zone}')::date, "
        f"count(*), count(DISTINCT agency_id), {searched} FROM {state.code}.stop").one()


def _formatted(day: date | None) -> str | None:
    return day.strftime(DATE_FORMAT) if day else None


# Each function below takes the state, and `agencies`: the table the names
# come from (the refresh's new snapshot, with the operators' mapping applied).

def nc_facts(conn, state: State, agencies: str) -> dict:
    first, last, total_stops, total_agencies, _ = _dated(conn, state, "0")
    (total_searches,) = conn.exec_driver_sql("SELECT count(*) FROM nc.search").one()
    if first is not None:
        # The State Highway Patrol's earlier stops are kept, but the timeframe
        # shown starts on the first day every agency reported.
        first = max(first, date.fromisoformat(NC_FIRST_DAY))
    return _facts(conn, state.code, agencies, _formatted(first), _formatted(last),
                  total_stops, total_agencies, total_searches)


def dated_facts(searched: str) -> Facts:
    """Facts of a state with one row per stop in `<state>.stop` and a `date`;
    `searched` is the SQL condition of a stop with a search."""
    def facts(conn, state: State, agencies: str) -> dict:
        first, last, total_stops, total_agencies, total_searches = _dated(
            conn, state, f"count(*) FILTER (WHERE {searched})")
        return _facts(conn, state.code, agencies, _formatted(first), _formatted(last),
                      total_stops, total_agencies, total_searches)
    return facts


def yearly_facts(searched: str) -> Facts:
    """The same for a state whose stops carry a `year` only (il): the
    timeframe is in years."""
    def facts(conn, state: State, agencies: str) -> dict:
        first, last, total_stops, total_agencies, total_searches = conn.exec_driver_sql(
            f"SELECT min(year), max(year), count(*), count(DISTINCT agency_id), "
            f"count(*) FILTER (WHERE {searched}) FROM {state.code}.stop").one()
        return _facts(conn, state.code, agencies, str(first) if first else None,
                      str(last) if last else None, total_stops, total_agencies,
                      total_searches)
    return facts
