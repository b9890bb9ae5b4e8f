"""Disparities with their confidence intervals, and officers ranked by the
search-rate disparity (API.md, "Analytics"); computed at request time from
the summaries' few rows of counts, with services/gateway/statistics.py.

    GET /nc/api/agency/78/disparities/?from=2015
    {"reference": "white", "confidence": 0.95, "groups": [{"group": "white", ...}, ...]}
"""

from __future__ import annotations

from collections import defaultdict

from services.gateway import queries, statistics
from services.gateway.counts import ETHNICITY_KEYS, RACE_KEYS
from services.gateway.resources.agencies import require_agency
from services.gateway.resources.aggregates import respond, scope_of
from services.gateway.validation import DisparityQuery, OfficersQuery
from shared.api import states_serving
from shared.states import DISPARITY_GROUPS, REFERENCE_GROUP

CONFIDENCE = 0.95


def _with_intervals(*names: str) -> list[str]:
    return [column for name in names for column in (
        (name, f"{name}_low", f"{name}_high") if name.endswith(("_rate", "_ratio")) else (name,))]


# The CSV columns, for an answer with no row (csv_bodies.to_csv).
DISPARITY_COLUMNS = _with_intervals("group", "stops", "searches", "hits", "search_rate",
                                    "search_rate_ratio", "hit_rate", "hit_rate_ratio",
                                    "population", "stop_rate_ratio")
OFFICER_COLUMNS = _with_intervals("officer", "stops", "group_stops", "group_searches",
                                  "reference_stops", "reference_searches",
                                  "search_rate_ratio", "p_value", "q_value", "flagged")


def group_of(race: str | None, ethnicity: str | None) -> str | None:
    """The disparity group of a driver: Hispanic whatever the race, else the
    race (the groups partition the drivers)."""
    if ethnicity == "H":
        return ETHNICITY_KEYS["H"]
    return RACE_KEYS.get(race)


def _by_group(rows, *counts: str) -> dict[str, dict[str, int]]:
    totals = {group: dict.fromkeys(counts, 0) for group in DISPARITY_GROUPS}
    for row in rows:
        group = group_of(row.race, row.ethnicity)
        if group is not None:
            for name in counts:
                totals[group][name] += getattr(row, name)
    return totals


def disparities(totals: dict[str, dict[str, int]], population: dict | None) -> list[dict]:
    """API.md's `groups` from each group's stops, searches and hits."""
    reference = totals[REFERENCE_GROUP]
    ref_population = (population or {}).get(REFERENCE_GROUP)
    groups = []
    for group in DISPARITY_GROUPS:
        counts = totals[group]
        residents = (population or {}).get(group)
        search_rate = statistics.wilson(counts["searches"], counts["stops"])
        hit_rate = statistics.wilson(counts["hits"], counts["searches"])
        if group == REFERENCE_GROUP:
            ratios = {"search_rate_ratio": statistics.reference_ratio(search_rate),
                      "hit_rate_ratio": statistics.reference_ratio(hit_rate),
                      "stop_rate_ratio": statistics.reference_ratio(
                          counts["stops"] / residents if residents else None)}
        else:
            ratios = {
                "search_rate_ratio": statistics.rate_ratio(
                    counts["searches"], counts["stops"], reference["searches"],
                    reference["stops"]),
                "hit_rate_ratio": statistics.rate_ratio(
                    counts["hits"], counts["searches"], reference["hits"],
                    reference["searches"]),
                "stop_rate_ratio": statistics.stop_rate_ratio(
                    counts["stops"], residents, reference["stops"], ref_population)}
        groups.append({
            "group": group, "stops": counts["stops"], "searches": counts["searches"],
            "hits": counts["hits"],
            "search_rate": search_rate, "search_rate_ratio": ratios["search_rate_ratio"],
            "hit_rate": hit_rate, "hit_rate_ratio": ratios["hit_rate_ratio"],
            "population": residents if population else None,
            "stop_rate_ratio": ratios["stop_rate_ratio"] if population else None})
    return groups


class Disparities:
    query = DisparityQuery
    csv = True

    def __init__(self, engine):
        self.engine = engine

    @property
    def states(self) -> tuple[str, ...]:
        return states_serving("disparities")

    @staticmethod
    def response_schema() -> dict:
        return {"$ref": "#/components/schemas/Disparities"}

    def on_get(self, req, resp, state: str, agency_id: int | None = None) -> None:
        _, scope = scope_of(req, state, agency_id, self.query)
        with self.engine.connect() as conn:
            if agency_id is not None:
                require_agency(conn, state, agency_id)
            body = self.answer(conn, scope)
        respond(req, resp, body, DISPARITY_COLUMNS)

    @staticmethod
    def answer(conn, scope: queries.Scope) -> dict:
        totals = _by_group(queries.disparity_counts(conn, scope), "stops", "searches", "hits")
        population = queries.population(conn, scope.state.code, scope.agency_id)
        return {"reference": REFERENCE_GROUP, "confidence": CONFIDENCE,
                "groups": disparities(totals, population)}


def ranking(rows, group: str, min_stops: int) -> list[dict]:
    """API.md's `officers`: each officer with at least `min_stops` stops, with
    the Fisher exact p-value and the Benjamini-Hochberg q-value over those
    listed, flagged first, then by the ratio's lower bound, then by id."""
    stops: dict[str, int] = defaultdict(int)
    counts: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {group: [0, 0], REFERENCE_GROUP: [0, 0]})
    for row in rows:
        stops[row.officer] += row.stops
        driver = group_of(row.race, row.ethnicity)
        if driver in (group, REFERENCE_GROUP):
            counts[row.officer][driver][0] += row.stops
            counts[row.officer][driver][1] += row.searches
    listed = sorted(officer for officer, total in stops.items() if total >= min_stops)
    officers = []
    for officer in listed:
        (g_stops, g_searches), (r_stops, r_searches) = (
            counts[officer][group], counts[officer][REFERENCE_GROUP])
        officers.append({
            "officer": officer, "stops": stops[officer],
            "group_stops": g_stops, "group_searches": g_searches,
            "reference_stops": r_stops, "reference_searches": r_searches,
            "search_rate_ratio": statistics.rate_ratio(g_searches, g_stops, r_searches,
                                                       r_stops),
            "p_value": statistics.fisher_p(g_searches, g_stops, r_searches, r_stops)})
    q_values = statistics.benjamini_hochberg([officer["p_value"] for officer in officers])
    for officer, q_value in zip(officers, q_values, strict=True):
        ratio = officer["search_rate_ratio"]
        officer["p_value"] = statistics.significant(officer["p_value"])
        officer["q_value"] = statistics.significant(q_value)
        # Decided on the published figures, so a reader can check it.
        officer["flagged"] = (officer["q_value"] < 0.05 and ratio is not None
                              and ratio["value"] > 1)
    officers.sort(key=_rank)
    return officers


def _rank(officer: dict) -> tuple:
    ratio = officer["search_rate_ratio"]
    low = ratio["low"] if ratio else None
    return (not officer["flagged"], low is None, -(low or 0), str(officer["officer"]))


class Officers:
    query = OfficersQuery
    csv = True

    def __init__(self, engine):
        self.engine = engine

    @property
    def states(self) -> tuple[str, ...]:
        return states_serving("officers")

    @staticmethod
    def response_schema() -> dict:
        return {"$ref": "#/components/schemas/Officers"}

    def on_get(self, req, resp, state: str, agency_id: int) -> None:
        query, scope = scope_of(req, state, agency_id, self.query)
        with self.engine.connect() as conn:
            require_agency(conn, state, agency_id)
            body = self.answer(conn, scope, query["group"], query["min_stops"])
        respond(req, resp, body, OFFICER_COLUMNS)

    @staticmethod
    def answer(conn, scope: queries.Scope, group: str, min_stops: int) -> dict:
        rows = queries.officer_counts(conn, scope)
        agency = _by_group(queries.disparity_counts(conn, scope), "stops", "searches")
        return {
            "group": group, "reference": REFERENCE_GROUP, "min_stops": min_stops,
            "agency_search_rate_ratio": statistics.rate_ratio(
                agency[group]["searches"], agency[group]["stops"],
                agency[REFERENCE_GROUP]["searches"], agency[REFERENCE_GROUP]["stops"]),
            "officers": ranking(rows, group, min_stops)}
