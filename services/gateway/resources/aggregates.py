"""The per-agency aggregates under `/{state}/api/agency/{id}/`, each a list
of count rows or an object of named lists (services/gateway/counts.py).

    AGGREGATES["stops_by_reason"] == {"stops": Count("purpose"),
                                      "searches": Count("purpose", "searched")}
"""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway import queries
from services.gateway.counts import count_rows
from services.gateway.errors import BadParameter
from services.gateway.resources.agencies import require_agency
from services.gateway.validation import AggregateQuery, load
from shared.api import states_serving
from shared.states import STATES


@dataclass(frozen=True)
class Count:
    """Rows by year and `group` (purpose, search_type or None) of the stops
    `selection` takes (searched, engage_force, contraband, ...; None: all)."""

    group: str | None = None
    selection: str | None = None


@dataclass(frozen=True)
class AggregateSpec:
    name: str
    body: Count | dict[str, Count]
    summary: str

    @property
    def states(self) -> tuple[str, ...]:
        """The states that have this route (shared/api.py)."""
        return states_serving(self.name)


AGGREGATES = {spec.name: spec for spec in (
    AggregateSpec("stops", Count(), "Stops by year"),
    AggregateSpec("stops_by_reason",
                  {"stops": Count("purpose"), "searches": Count("purpose", "searched")},
                  "Stops and stops with a search, by year and purpose"),
    AggregateSpec("searches", Count(selection="searched"), "Stops with a search, by year"),
    AggregateSpec("searches_by_type", Count("search_type", "search_type"),
                  "Stops with a search, by year and search type"),
    AggregateSpec("use_of_force", Count(selection="engage_force"),
                  "Stops with a search in which the officer engaged force"),
    AggregateSpec("contraband_hit_rate",
                  {"searches": Count(selection="searched"),
                   "contraband": Count(selection="contraband")},
                  "Stops searched, and stops searched where contraband was found"),
)}


class Aggregate:
    query = AggregateQuery

    def __init__(self, engine, spec: AggregateSpec):
        self.engine = engine
        self.spec = spec

    @property
    def states(self) -> tuple[str, ...]:
        return self.spec.states

    def on_get(self, req, resp, state: str, agency_id: int) -> None:
        officer = load(self.query(), req.params)["officer"]
        # A state whose releases name no officer: the filter is an error, not
        # an empty answer.
        if officer is not None and not STATES[state].has_officers:
            raise BadParameter({"officer": f"{state} has no officer data; leave officer out"})
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
        labels = STATES[state].labels.get(count.group) if count.group else None
        return count_rows(counts, count.group, labels)
