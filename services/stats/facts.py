"""The landing-page facts of a state, in the shape of API.md:

    {"state": "nc", "start_date": "Jan 01, 2002", "end_date": "Apr 12, 2016",
     "total_stops": 20622253, "total_stops_millions": 20, "total_searches": 632719,
     "total_agencies": 314, "top_agencies": [{"rank": 1, "id": 193, ...}],
     "updated_at": "2026-11-27T20:00:00Z"}
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from shared.states import NC_FIRST_DAY, STATES

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


def _dated(conn, state: str, searched: str) -> tuple:
    zone = STATES[state].time_zone
    return conn.exec_driver_sql(
        f"SELECT min(date AT TIME ZONE '{zone}')::date, max(date AT TIME ZONE '{zone}')::date, "
        f"count(*), count(DISTINCT agency_id), {searched} FROM {state}.stop").one()


def _formatted(day: date | None) -> str | None:
    return day.strftime(DATE_FORMAT) if day else None


def nc_facts(conn, agencies: str = "nc.agency") -> dict:
    """`agencies`: the table the names come from (the refresh's new snapshot,
    with the operators' mapping applied)."""
    first, last, total_stops, total_agencies, _ = _dated(conn, "nc", "0")
    (total_searches,) = conn.exec_driver_sql("SELECT count(*) FROM nc.search").one()
    if first is not None:
        # The State Highway Patrol's earlier stops are kept, but the timeframe
        # shown starts on the first day every agency reported.
        first = max(first, date.fromisoformat(NC_FIRST_DAY))
    return _facts(conn, "nc", agencies, _formatted(first), _formatted(last), total_stops,
                  total_agencies, total_searches)


def md_facts(conn, agencies: str = "md.agency") -> dict:
    first, last, total_stops, total_agencies, total_searches = _dated(
        conn, "md", "count(*) FILTER (WHERE searched)")
    return _facts(conn, "md", agencies, _formatted(first), _formatted(last), total_stops,
                  total_agencies, total_searches)


def il_facts(conn, agencies: str = "il.agency") -> dict:
    """il releases carry a year only: the timeframe is in years."""
    first, last, total_stops, total_agencies, total_searches = conn.exec_driver_sql(
        "SELECT min(year), max(year), count(*), count(DISTINCT agency_id), "
        "count(*) FILTER (WHERE searched = 'Y') FROM il.stop").one()
    return _facts(conn, "il", agencies, str(first) if first else None,
                  str(last) if last else None, total_stops, total_agencies, total_searches)


FACTS = {"nc": nc_facts, "md": md_facts, "il": il_facts}
