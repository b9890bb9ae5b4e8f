"""The per-agency aggregates under `/{state}/api/agency/{id}/`, each a list
of count rows or an object of named lists (services/gateway/counts.py).

    AGGREGATES["stops_by_reason"] == {"stops": Count("purpose"),
                                      "searches": Count("purpose", "searched")}
"""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway import queries
from services.gateway.counts import count_rows
from services.gateway.resources.agencies import require_agency
from services.gateway.validation import AggregateQuery, load
from shared.states import NC_PURPOSES, NC_SEARCH_TYPES, STATES


@dataclass(frozen=True)
class Count:
    """Rows by year and `group` (purpose, search_type or None) of the stops
    `selection` takes (searched, engage_force, contraband, ...; None: all)."""

    group: str | None = None
    selection: str | None = None


@dataclass(frozen=True)
class AggregateSpec:
    body: Count | dict[str, Count]
    states: tuple[str, ...]
    summary: str


ALL_STATES = tuple(STATES)

AGGREGATES = {
    "stops": AggregateSpec(Count(), ALL_STATES, "Stops by year"),
    "stops_by_reason": AggregateSpec(
        {"stops": Count("purpose"), "searches": Count("purpose", "searched")}, ALL_STATES,
        "Stops and stops with a search, by year and purpose"),
    "searches": AggregateSpec(Count(selection="searched"), ALL_STATES,
                              "Stops with a search, by year"),
    "searches_by_type": AggregateSpec(Count("search_type", "search_type"), ("nc",),
                                      "Stops with a search, by year and search type"),
    "use_of_force": AggregateSpec(Count(selection="engage_force"), ("nc",),
                                  "Stops with a search in which the officer engaged force"),
    "contraband_hit_rate": AggregateSpec(
        {"searches": Count(selection="searched"), "contraband": Count(selection="contraband")},
        ALL_STATES, "Stops searched, and stops searched where contraband was found"),
}

LABELS = {
    "nc": {"purpose": NC_PURPOSES, "search_type": NC_SEARCH_TYPES},
}


class Aggregate:
    query = AggregateQuery

    def __init__(self, engine, spec: AggregateSpec):
        self.engine = engine
        self.spec = spec
        self.states = spec.states

    def on_get(self, req, resp, state: str, agency_id: int) -> None:
        officer = load(self.query(), req.params)["officer"]
        body = self.spec.body
        with self.engine.connect() as conn:
            require_agency(conn, state, agency_id)
            if isinstance(body, Count):
                resp.media = self._rows(conn, state, agency_id, officer, body)
            else:
                resp.media = {name: self._rows(conn, state, agency_id, officer, count)
                              for name, count in body.items()}

    @staticmethod
    def _rows(conn, state: str, agency_id: int, officer: str | None,
              count: Count) -> list[dict]:
        counts = queries.stop_counts(conn, state, agency_id, officer, count.group,
                                     count.selection)
        labels = LABELS[state].get(count.group) if count.group else None
        return count_rows(counts, count.group, labels)
