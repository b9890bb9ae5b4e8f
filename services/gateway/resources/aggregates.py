"""The per-agency aggregates under `/{state}/api/agency/{id}/` and their
statewide twins under `/{state}/api/statewide/`, each a list of count rows
or an object of named lists (services/gateway/counts.py), by year or month,
over an optional range, as JSON or CSV.

    AGGREGATES["stops_by_reason"] == {"stops": Count("purpose"),
                                      "searches": Count("purpose", "searched")}
"""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway import queries
from services.gateway.counts import COUNT_KEYS, count_rows
from services.gateway.csv_bodies import set_csv_headers, to_csv, wants_csv
from services.gateway.resources.agencies import require_agency
from services.gateway.validation import AggregateQuery, check_scope, load, period_bound
from shared.api import states_serving
from shared.states import STATES


@dataclass(frozen=True)
class Count:
    """Rows by period and `group` (purpose, search_type, ... or None) of the
    stops `selection` takes (searched, engage_force, contraband, ...; None: all)."""

    group: str | None = None
    selection: str | None = None


@dataclass(frozen=True)
class AggregateSpec:
    name: str
    body: Count | dict[str, Count]
    summary: str

    @property
    def states(self) -> tuple[str, ...]:
        """The states that have this route (State.aggregates)."""
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
    AggregateSpec("stops_by_purpose_group", Count("purpose_group"),
                  "Stops by year and purpose group"),
    AggregateSpec("arrests", {"stops": Count(), "arrests": Count(selection="arrested")},
                  "Stops, and stops whose driver was arrested"),
    AggregateSpec("contraband_types", Count("contraband_type", "contraband_type"),
                  "Searched stops where each contraband type was found"),
)}


def scope_of(req, state: str, agency_id: int | None, schema) -> tuple[dict, queries.Scope]:
    """The request's loaded parameters and the stops they speak of."""
    query = load(schema(), req.params)
    known = STATES[state]
    check_scope(known, agency_id, query)
    return query, queries.Scope(
        known, agency_id, query.get("officer"), period_bound(query.get("from"), last=False),
        period_bound(query.get("to"), last=True), query.get("by") == "month")


def respond(req, resp, body, header: list[str] | None = None) -> None:
    """JSON, or CSV when the client asked for it (csv_bodies.py)."""
    if wants_csv(req):
        resp.text = to_csv(body, header)
        set_csv_headers(req, resp)
    else:
        resp.media = body


class Aggregate:
    """One aggregate for an agency, or (`statewide`) for the whole state."""

    query = AggregateQuery
    csv = True

    def __init__(self, engine, spec: AggregateSpec):
        self.engine = engine
        self.spec = spec

    @property
    def states(self) -> tuple[str, ...]:
        return self.spec.states

    def on_get(self, req, resp, state: str, agency_id: int | None = None) -> None:
        query, scope = scope_of(req, state, agency_id, self.query)
        with self.engine.connect() as conn:
            if agency_id is not None:
                require_agency(conn, state, agency_id)
            answer = self.answer(conn, scope)
        respond(req, resp, answer, self._header(scope, self.spec.body))

    def answer(self, conn, scope: queries.Scope):
        """The body for `scope`: what the website's charts show too."""
        body = self.spec.body
        if isinstance(body, Count):
            return self._rows(conn, scope, body)
        return {name: self._rows(conn, scope, count) for name, count in body.items()}

    def response_schema(self) -> dict:
        from services.gateway.openapi import ROWS

        body = self.spec.body
        if isinstance(body, Count):
            return ROWS
        return {"type": "object", "required": list(body),
                "properties": dict.fromkeys(body, ROWS)}

    @staticmethod
    def _rows(conn, scope: queries.Scope, count: Count) -> list[dict]:
        counts = queries.stop_counts(conn, scope, count.group, count.selection)
        labels = scope.state.labels.get(count.group) if count.group else None
        return count_rows(counts, count.group, labels,
                          period="month" if scope.by_month else "year")

    @staticmethod
    def _header(scope: queries.Scope, body) -> list[str]:
        """The CSV columns, for a body with no row."""
        counts = [body] if isinstance(body, Count) else list(body.values())
        group = counts[0].group
        header = ["month" if scope.by_month else "year", *([group] if group else []),
                  *COUNT_KEYS]
        return header if isinstance(body, Count) else ["table", *header]
