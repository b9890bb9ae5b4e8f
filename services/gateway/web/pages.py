"""The public pages: home, a state, an agency (every chart the state has),
the agency search, find-a-stop (nc) and about. Each reads what the API
reads, through the API's own resources (`answer`), so a page and the API
never disagree; pages of a state are cached by its generation like the API.
"""

from __future__ import annotations

from urllib.parse import urlencode

import falcon

from services.gateway import queries
from services.gateway.errors import BadParameter
from services.gateway.resources.agencies import EveryState, require_agency
from services.gateway.resources.aggregates import AGGREGATES, Aggregate, Count
from services.gateway.resources.analytics import Disparities, Officers
from services.gateway.resources.stops import FindStops
from services.gateway.validation import AggregateQuery, check_scope, load, period_bound
from services.gateway.web import charts
from services.gateway.web.rendering import HTML, render
from shared.states import COMBINED, NC_ACTIONS, STATES

# What each chart counts, as the page says it (API.md).
MEANINGS = {
    "stops": "Drivers stopped, one per stop, by race and by ethnicity.",
    "stops_by_reason": "Drivers stopped, and drivers searched, by the stop's purpose.",
    "searches": "Stops in which the driver or vehicle was searched.",
    "searches_by_type": "Searched stops by the type of search; a stop with searches of "
                        "several types counts under each.",
    "use_of_force": "Searched stops in which the officer engaged force.",
    "contraband_hit_rate": "Searched stops, and searched stops where contraband was found.",
    "stops_by_purpose_group": "Drivers stopped, by purpose group: safety violations, "
                              "regulatory and equipment, other.",
    "arrests": "Drivers stopped, and drivers arrested (DriverArrest).",
    "contraband_types": "Searched stops where each type of contraband was found; a stop "
                        "may count under several types.",
}
TITLES = {
    "stops": "Stops", "stops_by_reason": "Stops by purpose", "searches": "Searches",
    "searches_by_type": "Searches by type", "use_of_force": "Use of force",
    "contraband_hit_rate": "Contraband hit rate", "stops_by_purpose_group":
    "Stops by purpose group", "arrests": "Arrests", "contraband_types": "Contraband types",
}


class StatePages(EveryState):
    """Pages of one state: the API's state check (routing.ServedStates, which
    also refuses an unknown state) and cache apply to them."""

    media_type = HTML

    def __init__(self, engine):
        self.engine = engine


class Home:
    def __init__(self, engine):
        self.engine = engine

    def on_get(self, req, resp) -> None:
        with self.engine.connect() as conn:
            states = [(state, queries.facts(conn, code)) for code, state in STATES.items()]
        render(resp, "home.html", states=states)


class StatePage(StatePages):
    def on_get(self, req, resp, state: str) -> None:
        known = STATES[state]
        scope = queries.Scope(known)
        with self.engine.connect() as conn:
            # The agencies first: from then on this transaction holds a table
            # every stats swap must lock, so the facts (which a swap replaces
            # in its own transaction) cannot change before the counts are read.
            # The facts first could be one release and the counts the next.
            agencies = queries.agencies(conn, state)
            facts = queries.facts(conn, state)
            sections = [_section(known, None, name, Aggregate(self.engine, AGGREGATES[name])
                                 .answer(conn, scope), {})
                        for name in ("stops", "stops_by_purpose_group") if known.serves(name)]
            sections.append(_disparity_section(known, None, Disparities.answer(conn, scope), {}))
        render(resp, "state.html", state=known, facts=facts, agencies=agencies,
               sections=sections)


class AgencySearch(StatePages):
    """`/{state}/agencies/?q=part of a name`: the one agency found opens; several
    are listed."""

    def on_get(self, req, resp, state: str) -> None:
        known = STATES[state]
        wanted = (req.get_param("q") or "").strip()
        with self.engine.connect() as conn:
            agencies = queries.agencies(conn, state)
        found = [agency for agency in agencies if wanted.lower() in agency["name"].lower()]
        exact = [agency for agency in found if agency["name"].lower() == wanted.lower()]
        if wanted and (len(found) == 1 or len(exact) == 1):
            raise falcon.HTTPSeeOther(f"/{state}/agencies/{(exact or found)[0]['id']}/")
        render(resp, "agencies.html", state=known, wanted=wanted,
               agencies=found if wanted else agencies)


class AgencyPage(StatePages):
    def on_get(self, req, resp, state: str, agency_id: int) -> None:
        known = STATES[state]
        try:
            query = load(AggregateQuery(), req.params)
            check_scope(known, agency_id, query)
        except BadParameter as error:
            query, problem = {}, error.description
        else:
            problem = None
        officer = query.get("officer")
        scope = queries.Scope(known, agency_id, officer,
                              period_bound(query.get("from"), last=False),
                              period_bound(query.get("to"), last=True))
        params = {name: query[name] for name in ("from", "to", "officer") if query.get(name)}
        with self.engine.connect() as conn:
            agency = require_agency(conn, state, agency_id)
            sections = [_section(known, agency_id, name,
                                 Aggregate(self.engine, AGGREGATES[name]).answer(conn, scope),
                                 params)
                        for name in known.aggregates]
            disparities = Disparities.answer(conn, scope)
            sections.append(_disparity_section(known, agency_id, disparities, params))
            if known.has_officers and officer is None:
                sections.append(_officer_section(
                    known, agency_id, Officers.answer(conn, scope, "black", 100), params))
        render(resp, "agency.html", state=known, agency=agency, sections=sections,
               officer=officer, problem=problem, params=params,
               whole_agency=urlencode({key: value for key, value in params.items()
                                       if key != "officer"}),
               shares=_shares(disparities, agency.get("census_profile")))


def _csv_link(state, agency_id, name: str, params: dict, **more) -> str:
    where = "statewide" if agency_id is None else f"agency/{agency_id}"
    return f"/{state.code}/api/{where}/{name}/?" + urlencode(
        {**params, **more, "format": "csv"})


def _tables(body) -> list[tuple[str, list[dict]]]:
    if isinstance(body, list):
        return [("", body)]
    return list(body.items())


def _section(state, agency_id, name: str, body, params: dict) -> dict:
    counts = AGGREGATES[name].body
    group = (counts if isinstance(counts, Count) else next(iter(counts.values()))).group
    first_list = body if isinstance(body, list) else next(iter(body.values()))
    series = charts.COMBINED_SERIES if state.race_family == COMBINED else charts.RACE_SERIES
    return {"name": name, "title": TITLES[name], "meaning": MEANINGS[name],
            "chart": charts.count_chart(first_list, TITLES[name], group, series=series),
            "tables": _tables(body), "csv": _csv_link(state, agency_id, name, params)}


def _disparity_section(state, agency_id, body: dict, params: dict) -> dict:
    groups = body["groups"]
    return {"name": "disparities", "title": "Disparities",
            "meaning": "Search rate (searched stops / stops) and hit rate (searched stops "
                       "with contraband / searched stops) of each group of drivers, with "
                       "95% confidence intervals (Wilson), and each rate's ratio to white "
                       "drivers' (Katz interval). A stop-rate ratio compares stops per "
                       "resident (census ACS) with white residents'.",
            "charts": [charts.interval_chart(groups, "search_rate", "Search rate by group"),
                       charts.interval_chart(groups, "hit_rate", "Hit rate by group")],
            "groups": groups, "csv": _csv_link(state, agency_id, "disparities", params)}


def _officer_section(state, agency_id, body: dict, params: dict) -> dict:
    return {"name": "officers", "title": "Officers ranked by search disparity",
            "meaning": f"Officers with at least {body['min_stops']} stops, by how much more "
                       f"often they searched {body['group']} drivers than white drivers. "
                       "Flagged: Benjamini-Hochberg q < 0.05 with a ratio above 1. A flag "
                       "is a reason to look closer, not a finding.",
            "officers": body["officers"][:25], "listed": len(body["officers"]),
            "csv": _csv_link(state, agency_id, "officers", {
                key: value for key, value in params.items() if key != "officer"})}


def _shares(disparities: dict, profile: dict | None) -> list[dict] | None:
    """Share of stops beside share of residents, by group; None without a
    census profile."""
    groups = disparities["groups"]
    residents = sum(group["population"] or 0 for group in groups)
    stops = sum(group["stops"] for group in groups)
    if not profile or not residents:
        return None
    return [{"group": group["group"].replace("_", " "),
             "stops": group["stops"] / stops if stops else None,
             "residents": (group["population"] or 0) / residents} for group in groups]


class FindAStop(StatePages):
    """`/nc/find-a-stop/`: the original's form; results 25 a page."""

    @property
    def states(self) -> tuple[str, ...]:
        return FindStops(self.engine).states

    def on_get(self, req, resp, state: str) -> None:
        known = STATES[state]
        with self.engine.connect() as conn:
            agencies = queries.agencies(conn, state)
        form = {name: req.get_param(name) or "" for name in (
            "agency", "officer", "start_date", "end_date", "age", "gender", "race",
            "ethnicity", "page")}
        chosen = {name: req.get_param_as_list(name) or [] for name in ("purpose", "action")}
        problems, results = {}, None
        if "agency" in req.params:
            by_name = {agency["name"].lower(): agency["id"] for agency in agencies}
            agency_id = by_name.get(form["agency"].strip().lower())
            if agency_id is None:
                problems["agency"] = "choose an agency from the list"
            else:
                params = {**{name: value for name, value in form.items()
                             if value and name != "agency"},
                          **chosen, "agency": str(agency_id)}
                try:
                    results = FindStops(self.engine).answer(state, params)
                except BadParameter as error:
                    problems.update(error.problems)
        def page_query(page: int) -> str:
            return urlencode([*((name, value) for name, value in form.items()
                                if value and name != "page"),
                              *((name, value) for name, values in chosen.items()
                                for value in values), ("page", page)])

        render(resp, "find_stop.html", state=known, agencies=agencies, form=form,
               chosen=chosen, problems=problems, results=results, actions=NC_ACTIONS,
               page_query=page_query)


class About:
    def on_get(self, req, resp) -> None:
        render(resp, "about.html", states=list(STATES.values()))
