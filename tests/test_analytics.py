"""The analytics of API.md on a release whose answers are known: ranges and
months, statewide totals, purpose groups, arrests, contraband types,
disparities with their intervals, the officer ranking, and CSV; each read
through the gateway (falcon's TestClient) after the real import and refresh."""

from __future__ import annotations

import csv
import io
import math
import uuid

import pytest
from scipy.stats import binomtest, fisher_exact
from sqlalchemy import text

from services.gateway.counts import COUNT_KEYS
from tests.support.gateway import agency_ids, load_and_refresh, row

CEDAR = "Cedar Police Department"
DOGWOOD = "Dogwood Police Department"
ELM = "Elm Police Department"


def cedar_release(writer) -> None:
    # 23:59 on the last day of March in Raleigh: March, not April (UTC would say April).
    writer.stop(1, CEDAR, "2015-03-31 23:59:00", purpose=1, officer_id="O1")
    writer.person(11, 1, "D", 30, "M", "N", "W")
    # Searched, Drugs and Money found: counted under both types; the driver arrested.
    writer.stop(2, CEDAR, "2015-04-01 00:00:30", purpose=5, officer_id="O1", driver_arrest=1)
    writer.person(21, 2, "D", 30, "M", "N", "B")
    writer.search(201, 2, 21, search_type=3)
    writer.contraband(202, 201, 21, 2, grams="2", money="50")
    # A Hispanic driver of race B: black in the aggregates' race keys,
    # hispanic (only) in disparities.
    writer.stop(3, CEDAR, "2015-04-15 10:00:00", purpose=8, officer_id="O2")
    writer.person(31, 3, "D", 30, "M", "H", "B")
    writer.search(301, 3, 31, search_type=1)
    writer.stop(4, CEDAR, "2016-01-10 10:00:00", purpose=2, officer_id="O2")
    writer.person(41, 4, "D", 30, "M", "N", "W")
    writer.search(401, 4, 41, search_type=1)
    writer.contraband(402, 401, 41, 4, weapons="1")
    writer.stop(5, DOGWOOD, "2015-04-20 10:00:00", purpose=1, officer_id="X1")
    writer.person(51, 5, "D", 30, "M", "N", "A")
    writer.stop(6, DOGWOOD, "2016-06-01 10:00:00", purpose=3, officer_id="X1")
    writer.person(61, 6, "D", 30, "M", "N", "B")
    writer.search(601, 6, 61, search_type=3)
    writer.contraband(602, 601, 61, 6, pints="1")


@pytest.fixture
def cedar(config, engine, release, client) -> dict[str, int]:
    load_and_refresh(config, engine, release, cedar_release)
    return agency_ids(client)


def get(client, path: str, **params):
    response = client.simulate_get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json


def test_months_are_local_and_a_range_of_one_month_is_that_month(client, cedar):
    path = f"/nc/api/agency/{cedar[CEDAR]}/stops/"
    assert get(client, path, by="month") == [
        _month("2015-03", white=1, non_hispanic=1),
        _month("2015-04", black=2, hispanic=1, non_hispanic=1),
        _month("2016-01", white=1, non_hispanic=1)]
    assert get(client, path, **{"from": "2015-04", "to": "2015-04"}) == [
        row(2015, black=2, hispanic=1, non_hispanic=1)]
    assert get(client, path, **{"from": "2015-03", "to": "2015-03"}) == [
        row(2015, white=1, non_hispanic=1)]
    assert get(client, path, **{"from": "2016"}) == [row(2016, white=1, non_hispanic=1)]
    assert get(client, path, to="2015-02") == []


def _month(month: str, **counts) -> dict:
    counts = {key.replace("non_hispanic", "non-hispanic"): value
              for key, value in counts.items()}
    return {"month": month, **{key: counts.get(key, 0) for key in COUNT_KEYS}}


def test_purpose_groups_arrests_and_contraband_types(client, cedar):
    base = f"/nc/api/agency/{cedar[CEDAR]}"
    assert get(client, f"{base}/stops_by_purpose_group/") == [
        row(2015, purpose_group="Safety Violation", white=1, non_hispanic=1),
        row(2015, purpose_group="Regulatory and Equipment", black=1, non_hispanic=1),
        row(2015, purpose_group="Other", black=1, hispanic=1),
        row(2016, purpose_group="Safety Violation", white=1, non_hispanic=1)]
    arrests = get(client, f"{base}/arrests/")
    assert arrests["arrests"] == [row(2015, black=1, non_hispanic=1)]
    assert arrests["stops"] == get(client, f"{base}/stops/")
    # Stop 2 counts under Drugs and under Money.
    assert get(client, f"{base}/contraband_types/") == [
        row(2015, contraband_type="Drugs", black=1, non_hispanic=1),
        row(2015, contraband_type="Money", black=1, non_hispanic=1),
        row(2016, contraband_type="Weapons", white=1, non_hispanic=1)]


def test_a_statewide_total_is_the_sum_of_its_agencies(client, cedar):
    for endpoint in ("stops", "searches", "stops_by_purpose_group"):
        statewide = get(client, f"/nc/api/statewide/{endpoint}/")
        summed: dict[tuple, dict] = {}
        for agency_id in cedar.values():
            for counts in get(client, f"/nc/api/agency/{agency_id}/{endpoint}/"):
                key = (counts["year"], counts.get("purpose_group"))
                total = summed.setdefault(key, dict.fromkeys(COUNT_KEYS, 0))
                for name in COUNT_KEYS:
                    total[name] += counts[name]
        assert {(counts["year"], counts.get("purpose_group")):
                {name: counts[name] for name in COUNT_KEYS} for counts in statewide} == summed
    assert get(client, "/nc/api/statewide/stops/", **{"from": "2016"}) == [
        row(2016, white=1, black=1, non_hispanic=2)]


def _wilson(successes: int, trials: int) -> dict:
    interval = binomtest(successes, trials).proportion_ci(method="wilson")
    return {"value": round(successes / trials, 4), "low": round(interval.low, 4),
            "high": round(interval.high, 4)}


def test_disparities_partition_the_drivers_with_intervals(client, cedar):
    body = get(client, f"/nc/api/agency/{cedar[CEDAR]}/disparities/")
    assert (body["reference"], body["confidence"]) == ("white", 0.95)
    groups = {group["group"]: group for group in body["groups"]}
    assert list(groups) == ["white", "black", "hispanic", "asian", "native_american", "other"]
    counts = {name: (group["stops"], group["searches"], group["hits"])
              for name, group in groups.items()}
    # The Hispanic driver of race B is hispanic only.
    assert counts == {"white": (2, 1, 1), "black": (1, 1, 1), "hispanic": (1, 1, 0),
                      "asian": (0, 0, 0), "native_american": (0, 0, 0), "other": (0, 0, 0)}
    assert groups["white"]["search_rate"] == _wilson(1, 2)
    assert groups["hispanic"]["hit_rate"] == _wilson(0, 1)  # 0 of 1 is 0, with its interval
    assert groups["asian"]["search_rate"] is None  # no stop: no rate
    assert groups["white"]["search_rate_ratio"] == {"value": 1, "low": None, "high": None}
    # Katz: exp(ln 2 ± z·√(1/1 − 1/1 + 1/1 − 1/2)).
    ratio = groups["black"]["search_rate_ratio"]
    assert ratio["value"] == 2.0
    assert ratio["low"] == pytest.approx(2 * 2.718281828 ** (-1.959964 * 0.5 ** 0.5), abs=1e-4)
    assert groups["hispanic"]["hit_rate_ratio"] is None  # 0 hits: no ratio
    # No census profile: no population and no stop-rate ratio.
    assert groups["black"]["population"] is None
    assert groups["black"]["stop_rate_ratio"] is None

    statewide = get(client, "/nc/api/statewide/disparities/")
    assert sum(group["stops"] for group in statewide["groups"]) == 6


def test_a_range_narrows_the_disparities(client, cedar):
    body = get(client, f"/nc/api/agency/{cedar[CEDAR]}/disparities/", **{"from": "2016"})
    assert [(group["group"], group["stops"]) for group in body["groups"]
            if group["stops"]] == [("white", 1)]


def planted_release(writer) -> None:
    """Ten Elm officers with 100 white and 100 black drivers each, searching
    10 of each; officer P7 searches 60 of his black drivers. Officer Q has
    only 50 stops."""
    stop_id = 0
    for number in range(10):
        officer = "P7" if number == 7 else f"P{number}"
        for race in ("W", "B"):
            searched = 60 if officer == "P7" and race == "B" else 10
            for index in range(100):
                stop_id += 1
                writer.stop(stop_id, ELM, "2017-05-05 10:00:00", officer_id=officer)
                writer.person(stop_id, stop_id, "D", 30, "M", "N", race)
                if index < searched:
                    writer.search(stop_id, stop_id, stop_id, search_type=3)
    for _ in range(50):
        stop_id += 1
        writer.stop(stop_id, ELM, "2017-05-05 10:00:00", officer_id="Q")
        writer.person(stop_id, stop_id, "D", 30, "M", "N", "B")


def test_the_planted_officer_alone_is_flagged(config, engine, release, client):
    load_and_refresh(config, engine, release, planted_release)
    elm = agency_ids(client)[ELM]
    body = get(client, f"/nc/api/agency/{elm}/officers/")
    assert (body["group"], body["reference"], body["min_stops"]) == ("black", "white", 100)
    officers = body["officers"]
    assert [officer["officer"] for officer in officers if officer["flagged"]] == ["P7"]
    assert officers[0]["officer"] == "P7"
    assert "Q" not in {officer["officer"] for officer in officers}  # under min_stops
    assert len(officers) == 10
    planted = officers[0]
    assert (planted["group_stops"], planted["group_searches"], planted["reference_stops"],
            planted["reference_searches"]) == (100, 60, 100, 10)
    expected_p = fisher_exact([[60, 40], [10, 90]]).pvalue
    assert planted["p_value"] == pytest.approx(expected_p, rel=1e-5)
    # Benjamini-Hochberg over ten: the smallest p times 10 / 1.
    assert planted["q_value"] == pytest.approx(expected_p * 10, rel=1e-5)
    assert all(officer["p_value"] == 1 and officer["q_value"] == 1
               for officer in officers[1:])
    # The rest by id, their ratios' lower bounds being equal.
    assert [officer["officer"] for officer in officers[1:]] == [
        "P0", "P1", "P2", "P3", "P4", "P5", "P6", "P8", "P9"]
    assert len(get(client, f"/nc/api/agency/{elm}/officers/", min_stops=40)["officers"]) == 11


def _csv(client, path: str, **params) -> list[dict]:
    response = client.simulate_get(path, params={**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "\r\n" in response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def _as_text(value) -> str:
    return "" if value is None else str(value)


def test_csv_bodies_say_what_the_json_says(client, cedar):
    base = f"/nc/api/agency/{cedar[CEDAR]}"
    rows = _csv(client, f"{base}/stops_by_purpose_group/")
    assert rows == [{key: _as_text(value) for key, value in counts.items()}
                    for counts in get(client, f"{base}/stops_by_purpose_group/")]

    tables = _csv(client, f"{base}/arrests/")
    json_body = get(client, f"{base}/arrests/")
    assert tables == [{"table": name, **{key: _as_text(value) for key, value in counts.items()}}
                      for name, rows in json_body.items() for counts in rows]

    groups = _csv(client, f"{base}/disparities/")
    for parsed, group in zip(groups, get(client, f"{base}/disparities/")["groups"],
                             strict=True):
        assert parsed["group"] == group["group"]
        assert parsed["stops"] == str(group["stops"])
        rate = group["search_rate"]
        assert (parsed["search_rate"], parsed["search_rate_low"],
                parsed["search_rate_high"]) == (
            (_as_text(rate["value"]), _as_text(rate["low"]), _as_text(rate["high"]))
            if rate else ("", "", ""))

    response = client.simulate_get(f"{base}/stops/", headers={"Accept": "text/csv"})
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="nc-{cedar[CEDAR]}-stops.csv"'
    # The JSON of the same path is cached apart from its CSV.
    assert client.simulate_get(f"{base}/stops/").json == get(client, f"{base}/stops/")
    statewide = client.simulate_get("/nc/api/statewide/stops/", params={"format": "csv"})
    assert statewide.headers["Content-Disposition"] == \
        'attachment; filename="nc-statewide-stops.csv"'


@pytest.mark.parametrize("path, params, name, message", [
    ("disparities/", {"by": "month"}, "by", "is not accepted here"),
    ("officers/", {"by": "month"}, "by", "the ranking is over the whole range"),
    ("officers/", {"officer": "O1"}, "officer", "is not accepted here"),
    ("stops/", {"from": "\u0662\u0660\u0661\u0665"}, "from", "YYYY"),
    ("officers/", {"group": "white"}, "group", "must be one of black"),
    ("officers/", {"min_stops": "0"}, "min_stops", "from 1 to 100000"),
    ("officers/", {"min_stops": "100001"}, "min_stops", "from 1 to 100000"),
    ("stops/", {"from": "2016", "to": "2015-12"}, "to", "must not be before from"),
    ("stops/", {"from": "2015-13"}, "from", "YYYY-MM"),
    ("stops/", {"by": "week"}, "by", "must be year or month"),
    ("stops/", {"format": "xml"}, "format", "must be json or csv"),
])
def test_bad_analytics_parameters_are_400s_naming_them(client, cedar, path, params, name,
                                                        message):
    response = client.simulate_get(f"/nc/api/agency/{cedar[CEDAR]}/{path}", params=params)
    assert response.status_code == 400, response.text
    assert response.json["description"].startswith(f"{name}: ")
    assert message in response.json["description"]


def test_what_a_path_or_state_cannot_answer(client, cedar, config, engine):
    from odp.stack import samples
    from services.ingest.pipeline import run_import
    from services.stats.refresh import refresh

    for endpoint in ("stops", "disparities"):
        officer = client.simulate_get(f"/nc/api/statewide/{endpoint}/",
                                      params={"officer": "O1"})
        assert officer.status_code == 400
        assert officer.json["description"].startswith("officer: ")
        assert "only unique within an agency" in officer.json["description"]
    assert client.simulate_get("/nc/api/statewide/officers/").status_code == 404
    loaded = run_import({"import_id": f"analytics-il-{uuid.uuid4().hex[:8]}",
                         "state": "il", "url": samples()["il"].as_uri()}, config)
    assert loaded["event"] == "dataset_loaded", loaded
    refresh(engine, "il", loaded["payload"]["data_version"])
    il_agency = get(client, "/il/api/agency/")[0]["id"]
    for params, name in (({"from": "2015-03"}, "from"), ({"to": "2016-01"}, "to"),
                         ({"by": "month"}, "by"), ({"officer": "A1"}, "officer")):
        response = client.simulate_get(f"/il/api/agency/{il_agency}/stops/", params=params)
        assert response.status_code == 400, params
        assert response.json["description"].startswith(f"{name}: "), params
    assert client.simulate_get(f"/il/api/agency/{il_agency}/officers/").status_code == 404
    assert client.simulate_get(f"/il/api/agency/{il_agency}/arrests/").status_code == 404
    assert client.simulate_get(f"/il/api/agency/{il_agency}/stops_by_purpose_group/",
                               params={"from": "2015", "to": "2016"}).status_code == 200


def test_analytics_are_cached_by_generation_and_listed_in_openapi(client, cedar):
    path = f"/nc/api/agency/{cedar[CEDAR]}/disparities/"
    first = client.simulate_get(path, params={"from": "2015"})
    again = client.simulate_get(path, params={"from": "2015"})
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("miss", "hit")
    assert again.json == first.json and again.headers["ETag"] == first.headers["ETag"]
    csv_body = client.simulate_get(path, params={"from": "2015"},
                                   headers={"Accept": "text/csv"})
    assert csv_body.headers["ETag"] != first.headers["ETag"]  # cached apart

    document = client.simulate_get("/openapi.json").json
    officers = document["paths"]["/{state}/api/agency/{agency_id}/officers/"]["get"]
    assert {parameter["name"] for parameter in officers["parameters"]} >= {
        "state", "agency_id", "group", "min_stops", "from", "to", "format"}
    state = next(p for p in officers["parameters"] if p["name"] == "state")
    assert state["schema"]["enum"] == ["nc", "md"]
    assert officers["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Officers"}
    assert "text/csv" in officers["responses"]["200"]["content"]
    for endpoint in ("stops", "arrests", "contraband_types", "stops_by_purpose_group",
                     "disparities"):
        assert f"/{{state}}/api/statewide/{endpoint}/" in document["paths"]
    assert "/{state}/api/statewide/officers/" not in document["paths"]


def test_the_statewide_pages_are_among_those_warmed_after_a_refresh():
    from shared.api import state_paths

    paths = state_paths("md", [4])
    assert "/md/api/statewide/stops_by_purpose_group/" in paths
    assert "/md/api/statewide/disparities/" in paths
    assert "/md/api/agency/4/officers/" in paths
    assert "/md/api/statewide/arrests/" not in paths
    assert "/il/api/agency/4/officers/" not in state_paths("il", [4])


def test_odp_prints_disparities_and_officers(config, engine, release, start_gateway):
    import subprocess
    import sys

    import requests

    from tests.conftest import ROOT

    load_and_refresh(config, engine, release, planted_release)
    base = start_gateway()
    elm = {agency["name"]: agency["id"]
           for agency in requests.get(f"{base}/nc/api/agency/", timeout=10).json()}[ELM]

    def odp(*args):
        result = subprocess.run([sys.executable, "-m", "odp", *args], cwd=ROOT,
                                env=config.as_environ() | {"ODP_URL": base},
                                capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.decode()  # as printed: CSV keeps its CRLF

    printed = odp("disparities", "nc", str(elm), "--from", "2017", "--csv")
    assert printed == requests.get(f"{base}/nc/api/agency/{elm}/disparities/",
                                   params={"from": "2017", "format": "csv"}, timeout=10).text
    table = odp("officers", "nc", str(elm))
    lines = table.splitlines()
    assert lines[0].startswith("black vs white drivers, officers with at least 100 stops")
    assert lines[2].startswith("P7") and lines[2].endswith("yes")
    assert odp("disparities", "nc", "statewide").startswith("Reference group: white")


CEDAR_GEOID = "1600000US3799901"


@pytest.fixture
def residents(engine):
    """Census profiles of Cedar's town and of North Carolina (year 2099, so
    the newest), and Cedar mapped to its town; all removed afterwards."""
    from shared.tables import CENSUS_COUNTS

    def profile(geoid: str, name: str, white: int, black: int, hispanic: int) -> dict:
        counts = dict.fromkeys(CENSUS_COUNTS, 0) | {
            "pop_white": white, "pop_black": black, "pop_hispanic": hispanic}
        return {"year": 2099, "geoid": geoid, "state": "nc", "name": name, **counts}

    columns = ("year", "geoid", "state", "name", *CENSUS_COUNTS)
    insert = text(f"INSERT INTO census.profiles ({', '.join(columns)}) VALUES "
                  f"({', '.join(':' + column for column in columns)})")
    with engine.begin() as conn:
        conn.execute(insert, [profile(CEDAR_GEOID, "Cedar town, North Carolina", 1000, 500, 200),
                              profile("0400000US37", "North Carolina", 60000, 20000, 9000)])
        conn.execute(text("INSERT INTO stats.agency_mappings (state, code, name, geoid) "
                          "VALUES ('nc', :code, :code, :geoid)"),
                     {"code": CEDAR, "geoid": CEDAR_GEOID})
    yield
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM census.profiles WHERE year = 2099"))
        conn.execute(text("DELETE FROM stats.agency_mappings WHERE geoid = :geoid"),
                     {"geoid": CEDAR_GEOID})


def test_the_stop_rate_ratio_weighs_stops_by_residents(residents, client, cedar):
    body = get(client, f"/nc/api/agency/{cedar[CEDAR]}/disparities/")
    groups = {group["group"]: group for group in body["groups"]}
    assert (groups["white"]["population"], groups["black"]["population"],
            groups["hispanic"]["population"], groups["asian"]["population"]) == (
        1000, 500, 200, 0)
    # (1 black stop / 500) / (2 white stops / 1000), interval exp(ln r ± z·√(1/1 + 1/2)).
    ratio = groups["black"]["stop_rate_ratio"]
    spread = 1.959964 * (1 / 1 + 1 / 2) ** 0.5
    assert ratio == {"value": 1.0, "low": round(math.exp(-spread), 4),
                     "high": round(math.exp(spread), 4)}
    assert groups["white"]["stop_rate_ratio"] == {"value": 1, "low": None, "high": None}
    assert groups["asian"]["stop_rate_ratio"] is None  # no residents counted: no ratio

    statewide = {group["group"]: group
                 for group in get(client, "/nc/api/statewide/disparities/")["groups"]}
    assert statewide["black"]["population"] == 20000
    # (2 black stops / 20000) / (2 white stops / 60000) statewide.
    assert statewide["black"]["stop_rate_ratio"]["value"] == 3.0


def test_an_empty_ranking_still_has_its_csv_header_and_formats_vary_by_accept(client,
                                                                              cedar):
    path = f"/nc/api/agency/{cedar[CEDAR]}/officers/"
    response = client.simulate_get(path, params={"format": "csv", "min_stops": "100000"})
    assert response.status_code == 200
    assert response.text.split("\r\n")[0].split(",") == [
        "officer", "stops", "group_stops", "group_searches", "reference_stops",
        "reference_searches", "search_rate_ratio", "search_rate_ratio_low",
        "search_rate_ratio_high", "p_value", "q_value", "flagged"]
    stops = f"/nc/api/agency/{cedar[CEDAR]}/stops/"
    assert client.simulate_get(stops).headers["Vary"] == "Accept"
    for _ in range(2):  # the second from the cache
        as_csv = client.simulate_get(stops, headers={"Accept": "text/csv"})
        assert as_csv.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert as_csv.headers["X-Cache"] == "hit"
    assert client.simulate_get(stops).headers["Content-Type"] == "application/json"


def test_officers_are_ordered_flagged_first_then_by_the_ratios_lower_bound():
    from collections import namedtuple

    from services.gateway.resources.analytics import ranking

    Row = namedtuple("Row", "officer race ethnicity stops searches")

    def officer(name, black_searched, white_searched, black=100, white=100):
        return [Row(name, "B", "N", black, black_searched),
                Row(name, "W", "N", white, white_searched)]

    rows = [*officer("strong", 60, 10), *officer("mild", 30, 10),
            *officer("even-b", 10, 10), *officer("even-a", 10, 10),
            *officer("no-white", 5, 0, white=0), *officer("lower", 10, 40)]
    ranked = ranking(rows, "black", 100)
    assert [entry["officer"] for entry in ranked] == [
        "strong", "mild", "even-a", "even-b", "lower", "no-white"]
    assert [entry["flagged"] for entry in ranked] == [True, True, False, False, False, False]
    # No reference drivers: no ratio, p = 1, and it takes part in the adjustment.
    assert ranked[-1]["search_rate_ratio"] is None and ranked[-1]["p_value"] == 1
