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


# The facts come from one pass over the stops, by agency: a few hundred
# groups, whose totals, time frame and top five are taken here. The first
# and last days are those of the earliest and latest instants (the local
# date never goes back as time goes on), so no row's time zone is converted.
BY_AGENCY = """
SELECT agency_id, count(*) AS stops, min({when}) AS first, max({when}) AS last,
       {searched} AS searches
FROM {state}.stop GROUP BY agency_id
"""
TOP = 5


def _facts(conn, state: str, agencies: str, by_agency: list, first, last,
           total_searches: int | None = None) -> dict:
    """The facts from BY_AGENCY's rows; `total_searches` when the stops do
    not count them."""
    top = sorted(by_agency, key=lambda row: (-row.stops, row.agency_id))[:TOP]
    names = dict(conn.exec_driver_sql(
        f"SELECT id, name FROM {agencies} WHERE id = ANY(%(ids)s)",
        {"ids": [row.agency_id for row in top]}).all())
    total_stops = sum(row.stops for row in by_agency)
    return {
        "state": state,
        "start_date": first,
        "end_date": last,
        "total_stops": total_stops,
        "total_stops_millions": total_stops // 1_000_000,
        "total_searches": (total_searches if total_searches is not None
                           else sum(row.searches for row in by_agency)),
        "total_agencies": len(by_agency),
        "top_agencies": [{"rank": rank, "id": row.agency_id, "name": names[row.agency_id],
                          "stops": row.stops}
                         for rank, row in enumerate(
                             (row for row in top if row.agency_id in names), 1)],
        "updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _by_agency(conn, state: State, when: str, searched: str) -> list:
    return conn.exec_driver_sql(BY_AGENCY.format(state=state.code, when=when,
                                                 searched=searched)).all()


def _dated(conn, state: State, searched: str) -> tuple[list, date | None, date | None]:
    """BY_AGENCY's rows, and the first and last days in the state's time zone."""
    by_agency = _by_agency(conn, state, "date", searched)
    if not by_agency:
        return by_agency, None, None
    first, last = conn.exec_driver_sql(
        f"SELECT (%(first)s::timestamptz AT TIME ZONE '{state.time_zone}')::date, "
        f"(%(last)s::timestamptz AT TIME ZONE '{state.time_zone}')::date",
        {"first": min(row.first for row in by_agency),
         "last": max(row.last for row in by_agency)}).one()
    return by_agency, first, last


def _formatted(day: date | None) -> str | None:
    return day.strftime(DATE_FORMAT) if day else None


# Each function below takes the state, and `agencies`: the table the names
# come from (the refresh's new snapshot, with the operators' mapping applied).

def nc_facts(conn, state: State, agencies: str) -> dict:
    by_agency, first, last = _dated(conn, state, "0")
    (total_searches,) = conn.exec_driver_sql("SELECT count(*) FROM nc.search").one()
    if first is not None:
        # The State Highway Patrol's earlier stops are kept, but the timeframe
        # shown starts on the first day every agency reported.
        first = max(first, date.fromisoformat(NC_FIRST_DAY))
    return _facts(conn, state.code, agencies, by_agency, _formatted(first), _formatted(last),
                  total_searches)


def dated_facts(searched: str) -> Facts:
    """Facts of a state with one row per stop in `<state>.stop` and a `date`;
    `searched` is the SQL condition of a stop with a search."""
    def facts(conn, state: State, agencies: str) -> dict:
        by_agency, first, last = _dated(conn, state, f"count(*) FILTER (WHERE {searched})")
        return _facts(conn, state.code, agencies, by_agency, _formatted(first),
                      _formatted(last))
    return facts


def yearly_facts(searched: str) -> Facts:
    """The same for a state whose stops carry a `year` only (il): the
    timeframe is in years."""
    def facts(conn, state: State, agencies: str) -> dict:
        by_agency = _by_agency(conn, state, "year", f"count(*) FILTER (WHERE {searched})")
        first = min((row.first for row in by_agency if row.first is not None), default=None)
        last = max((row.last for row in by_agency if row.last is not None), default=None)
        return _facts(conn, state.code, agencies, by_agency, str(first) if first else None,
                      str(last) if last else None)
    return facts
