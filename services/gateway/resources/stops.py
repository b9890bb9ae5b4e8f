"""`/nc/api/stops/`: find a stop, newest first, a page at a time.

No total is counted (it was the slow part of the original site): one more
row than the page is read, and its presence is `has_next`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.gateway import queries
from services.gateway.resources.agencies import require_agency
from services.gateway.validation import FindStopsQuery, load
from shared.states import NC_ACTIONS, NC_PURPOSES, STATES


def local_midnight(day: date | None, zone: ZoneInfo) -> datetime | None:
    return None if day is None else datetime.combine(day, time(), tzinfo=zone)


def stop_item(row, zone: ZoneInfo) -> dict:
    driver = None
    if row.race is not None:
        driver = {"age": row.age, "gender": row.gender, "race": row.race,
                  "ethnicity": row.ethnicity}
    return {
        "stop_id": row.stop_id,
        "date": row.date.astimezone(zone).isoformat(),
        "agency_id": row.agency_id,
        "agency": row.agency,
        "officer_id": row.officer_id,
        "purpose": NC_PURPOSES.get(row.purpose),
        "action": NC_ACTIONS.get(row.action),
        "driver": driver,
        "searched": row.searched,
    }


class FindStops:
    @property
    def states(self) -> tuple[str, ...]:
        return tuple(code for code, state in STATES.items() if state.finds_stops)

    query = FindStopsQuery

    def __init__(self, engine):
        self.engine = engine

    def on_get(self, req, resp, state: str) -> None:
        resp.media = self.answer(state, req.params)

    def answer(self, state: str, params: dict) -> dict:
        """A page of stops for the query `params` (the website's form too)."""
        query = load(self.query(), params)
        zone = STATES[state].zone
        end_date = query.get("end_date")
        filters = queries.StopFilters(
            agency_id=query["agency"],
            officer=query["officer"],
            start=local_midnight(query.get("start_date"), zone),
            # Both dates are inclusive: the range ends at the next day's midnight.
            end=local_midnight(end_date + timedelta(days=1) if end_date else None, zone),
            age=query.get("age"),
            gender=query.get("gender"),
            race=query.get("race"),
            ethnicity=query.get("ethnicity"),
            purposes=tuple(query["purpose"]),
            actions=tuple(query["action"]),
        )
        page, page_size = query["page"], query["page_size"]
        with self.engine.connect() as conn:
            require_agency(conn, state, filters.agency_id)
            rows = queries.find_stops(conn, state, filters, limit=page_size + 1,
                                      offset=(page - 1) * page_size)
        return {
            "page": page,
            "page_size": page_size,
            "has_next": len(rows) > page_size,
            "results": [stop_item(row, zone) for row in rows[:page_size]],
        }
