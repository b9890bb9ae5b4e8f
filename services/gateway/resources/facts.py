"""`/{state}/api/facts/`: the landing facts the last stats refresh stored."""

from __future__ import annotations

from services.gateway import queries
from services.gateway.errors import NotFound
from services.gateway.resources.agencies import EveryState
from shared.states import STATES

# jsonb keeps keys in its own order; clients reading the body by eye expect
# API.md's.
FACT_KEYS = ("state", "start_date", "end_date", "total_stops", "total_stops_millions",
             "total_searches", "total_agencies", "top_agencies", "updated_at")
TOP_AGENCY_KEYS = ("rank", "id", "name", "stops")


def in_order(values: dict, keys: tuple[str, ...]) -> dict:
    ordered = {key: values[key] for key in keys if key in values}
    ordered.update((key, value) for key, value in values.items() if key not in ordered)
    return ordered


class Facts(EveryState):

    def __init__(self, engine):
        self.engine = engine

    def on_get(self, req, resp, state: str) -> None:
        with self.engine.connect() as conn:
            facts = queries.facts(conn, state)
        if facts is None:
            raise NotFound(f"the facts of {STATES[state].name} are not computed yet")
        facts = in_order(facts, FACT_KEYS)
        facts["top_agencies"] = [in_order(agency, TOP_AGENCY_KEYS)
                                 for agency in facts.get("top_agencies", [])]
        resp.media = facts
