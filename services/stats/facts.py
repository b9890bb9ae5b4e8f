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


def nc_facts(conn, agencies: str = "nc.agency") -> dict:
    """`agencies`: the table the names come from (the refresh's new snapshot,
    with the operators' mapping applied)."""
    zone = STATES["nc"].time_zone
    first, last, total_stops, total_agencies = conn.exec_driver_sql(
        f"SELECT min(date AT TIME ZONE '{zone}')::date, max(date AT TIME ZONE '{zone}')::date, "
        "count(*), count(DISTINCT agency_id) FROM nc.stop").one()
    (total_searches,) = conn.exec_driver_sql("SELECT count(*) FROM nc.search").one()
    top = conn.exec_driver_sql(
        "SELECT agency.id, agency.name, top.stops FROM "
        "(SELECT agency_id, count(*) AS stops FROM nc.stop GROUP BY agency_id "
        " ORDER BY stops DESC, agency_id LIMIT 5) AS top "
        f"JOIN {agencies} AS agency ON agency.id = top.agency_id "
        "ORDER BY top.stops DESC, agency.id").all()
    if first is not None:
        # The State Highway Patrol's earlier stops are kept, but the timeframe
        # shown starts on the first day every agency reported.
        first = max(first, date.fromisoformat(NC_FIRST_DAY))
    return {
        "state": "nc",
        "start_date": first.strftime(DATE_FORMAT) if first else None,
        "end_date": last.strftime(DATE_FORMAT) if last else None,
        "total_stops": total_stops,
        "total_stops_millions": total_stops // 1_000_000,
        "total_searches": total_searches,
        "total_agencies": total_agencies,
        "top_agencies": [{"rank": rank, "id": row.id, "name": row.name, "stops": row.stops}
                         for rank, row in enumerate(top, 1)],
        "updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


FACTS = {"nc": nc_facts}
