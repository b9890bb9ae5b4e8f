"""The census service: ACS 5-year profiles fetched from a local server speaking
the Census API's format (services/census/local_api.py), stored in the
`census` schema, and announced on the bus."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from services.census import acs
from services.census.local_api import LocalCensusApi, load_fixture
from services.census.service import run_load
from shared.events import CENSUS_FAILED, CENSUS_LOADED, CENSUS_REQUESTED
from shared.nameko_support import publisher
from shared.tables import CENSUS_POPULATION
from tests.support.broker import EventListener
from tests.support.census import (
    STATE_PROFILES,
    expected_state_profile,
    expected_stored,
)
from tests.support.waiting import wait_until

KEY = "test-key"
FIELDS = ("total", "white", "black", "native_american", "asian", "native_hawaiian", "other",
          "two_or_more_races", "hispanic", "non_hispanic")
# docs/DATA-FORMATS.md, "Census": field -> (nc variable, md and il variable).
TABLE = {
    "total": ("B03002_001E", "C02003_001E"),
    "white": ("B03002_003E", "C02003_003E"),
    "black": ("B03002_004E", "C02003_004E"),
    "native_american": ("B03002_005E", "C02003_005E"),
    "asian": ("B03002_006E", "C02003_006E"),
    "native_hawaiian": ("B03002_007E", "C02003_007E"),
    "other": ("B03002_008E", "C02003_008E"),
    "two_or_more_races": ("B03002_009E", "C02003_009E"),
    "hispanic": ("B03002_012E", "B03002_012E"),
    "non_hispanic": ("B03002_002E", "B03002_002E"),
}
# API.md's population counts, from B03002 whatever the state's table:
# column -> the variables summed.
POPULATION = {
    "pop_white": ("B03002_003E",),
    "pop_black": ("B03002_004E",),
    "pop_native_american": ("B03002_005E",),
    "pop_asian": ("B03002_006E",),
    "pop_other": ("B03002_007E", "B03002_008E", "B03002_009E"),
    "pop_hispanic": ("B03002_012E",),
}
FIPS = {"nc": "37", "md": "24", "il": "17"}
CDPS = ("1600000US3747000", "1600000US2419125", "1600000US1765078")
# Three counties, three places and the state itself a state in
# services/census/fixture.json.
FIXTURE_PROFILES = 21
# A request a state for its counties, its places and itself.
REQUESTS = 9
# Rows of the bundled fixture (its invented numbers), as stored:
# (year, state, name, total, white, black, native_american, asian,
#  native_hawaiian, other, two_or_more_races, hispanic, non_hispanic).
EXPECTED = {
    "0500000US37063": (2022, "nc", "Alder County, North Carolina",
                       331412, 130089, 108896, 3920, 20394, 955, 2902, 13295, 50961, 280451),
    "1600000US2404000": (2022, "md", "Harbor Point city, Maryland",
                         142507, 86825, 34334, 1399, 7906, 259, 6276, 5508, 13429, 129078),
    "0500000US17031": (2022, "il", "Prairie County, Illinois",
                       824519, 368498, 321819, 8757, 57366, 1783, 30765, 35531, 45906, 778613),
}
PROFILE_COLUMNS = "year, state, name, " + ", ".join(FIELDS)


@pytest.fixture(autouse=True)
def no_profiles(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM census.profiles")


@pytest.fixture
def api():
    server = LocalCensusApi()
    yield server
    server.close()


def census_config(config, api, **changes):
    return config.with_changes(**{"census_api_url": api.url, "census_api_key": KEY,
                                  "census_years": ("2022",), **changes})


def load(engine, config, api, years=None, request_id=None, **options):
    """run_load against the local API, retrying quickly."""
    options = {"backoff": 0.01, **options}
    changes = {name: options.pop(name) for name in ("census_api_key", "census_years")
               if name in options}
    return run_load(engine, census_config(config, api, **changes),
                    request_id or uuid.uuid4().hex, years, **options)


def stored(db) -> list:
    """Every stored profile, with its loaded_at (a rewrite changes it)."""
    return db("SELECT * FROM census.profiles ORDER BY year, geoid")


def outbox_of(db, request_id: str) -> list:
    return db("SELECT event_type, payload FROM census.outbox "
              "WHERE payload->>'request_id' = :id ORDER BY id", id=request_id)


def load_row(db, request_id: str):
    return db("SELECT status, years, profiles, error, finished_at IS NOT NULL "
              "FROM census.loads WHERE request_id = :id", id=request_id)


def geography(state: str, kind: str, code: str, name: str, values: dict) -> dict:
    """A geography of the local API's data; a state's code is its FIPS code
    (pass "")."""
    if kind == "state":
        return {"geoid": "0400000US" + FIPS[state], "name": name,
                "state_fips": FIPS[state], "kind": kind, "code": FIPS[state], **values}
    prefix = "0500000US" if kind == "county" else "1600000US"
    return {"geoid": prefix + FIPS[state] + code, "name": name, "state_fips": FIPS[state],
            "kind": kind, "code": code, **values}


ALL_VARIABLES = sorted({variable for pair in TABLE.values() for variable in pair}
                       | {"B03002_010E", "B03002_011E", "C02003_002E"})


DISTINCT_GEOGRAPHIES = [
    ("nc", "county", "001", "Ash County, North Carolina"),
    ("nc", "place", "10000", "Ash city, North Carolina"),
    ("nc", "place", "10500", "Ash Springs CDP, North Carolina"),
    ("nc", "state", "", "North Carolina"),
    ("md", "county", "001", "Elm County, Maryland"),
    ("md", "place", "20000", "Elm town, Maryland"),
    ("md", "place", "20500", "Elm Knoll CDP, Maryland"),
    ("md", "state", "", "Maryland"),
    ("il", "county", "001", "Oak County, Illinois"),
    ("il", "place", "30000", "Oak village, Illinois"),
    ("il", "place", "30500", "Oak Flats CDP, Illinois"),
    ("il", "state", "", "Illinois"),
]


def distinct_data() -> list[dict]:
    """A county, a place, a CDP and the state itself a state, every variable
    with a value of its own, so a variable read into the wrong field shows."""
    geographies = []
    for number, (state, kind, code, name) in enumerate(DISTINCT_GEOGRAPHIES, start=1):
        values = {variable: number * 1000 + index for index, variable in
                  enumerate(ALL_VARIABLES, start=1)}
        geographies.append(geography(state, kind, code, name, values))
    return geographies


def stored_row(db, geoid: str) -> dict:
    """A stored profile without its loaded_at."""
    (row,) = db("SELECT * FROM census.profiles WHERE geoid = :g", g=geoid)
    return {key: value for key, value in row._mapping.items() if key != "loaded_at"}


def population_of(db, geoid: str) -> tuple:
    return db(f"SELECT {', '.join(CENSUS_POPULATION)} FROM census.profiles "
              "WHERE geoid = :g", g=geoid)[0]


def test_the_three_states_counties_places_and_own_profiles_are_stored(
        config, engine, db, api):
    request_id = uuid.uuid4().hex
    result = load(engine, config, api, request_id=request_id)

    assert (result["status"], result["profiles"], result["years"], result["error"]) == (
        "loaded", FIXTURE_PROFILES, [2022], None)
    assert db("SELECT state, count(*) FROM census.profiles GROUP BY state ORDER BY state") == [
        ("il", 7), ("md", 7), ("nc", 7)]
    for geoid, expected in EXPECTED.items():
        assert db(f"SELECT {PROFILE_COLUMNS} FROM census.profiles WHERE geoid = :g",
                  g=geoid) == [expected]
        assert stored_row(db, geoid) == expected_stored(geoid)
    # Census-designated places are left out; the other places are kept.
    assert db("SELECT geoid FROM census.profiles WHERE geoid IN :cdps OR name LIKE '%CDP%'",
              cdps=CDPS) == []
    assert db("SELECT count(*) FROM census.profiles WHERE geoid LIKE '1600000US%'") == [(9,)]
    # Each state's own profile, its GEO_ID as the API gives it.
    assert db("SELECT state, geoid, name FROM census.profiles WHERE geoid LIKE '0400000US%' "
              "ORDER BY state") == [(state, *STATE_PROFILES[state]) for state in sorted(FIPS)]
    for state in FIPS:
        assert stored_row(db, STATE_PROFILES[state][0]) == expected_state_profile(state)
    # Every stored row, from the fixture's raw values.
    for row in stored(db):
        assert stored_row(db, row.geoid) == expected_stored(row.geoid), row.geoid

    # Three requests a state (counties, places, the state), with the key.
    assert len(api.requests) == REQUESTS
    assert {path for path, _ in api.requests} == {"/data/2022/acs/acs5"}
    assert sorted((params["for"], params.get("in")) for _, params in api.requests) == sorted(
        [(kind, f"state:{fips}") for kind in ("county:*", "place:*") for fips in FIPS.values()]
        + [(f"state:{fips}", None) for fips in FIPS.values()])
    assert {params["key"] for _, params in api.requests} == {KEY}
    # The state's variables and the population's, each once, in every request.
    population = {name for names in POPULATION.values() for name in names}
    gets = {}
    for _, params in api.requests:
        fips = (params.get("in") or params["for"]).removeprefix("state:")
        names = params["get"].split(",")
        assert len(names) == len(set(names)), names
        assert gets.setdefault(fips, names) == names
    assert set(gets["37"]) == {"NAME", "GEO_ID"} | {nc for nc, _ in TABLE.values()} | population
    for fips in ("24", "17"):
        assert set(gets[fips]) == ({"NAME", "GEO_ID"} | {md for _, md in TABLE.values()}
                                   | population)

    assert load_row(db, request_id) == [("loaded", [2022], FIXTURE_PROFILES, None, True)]
    [(event_type, payload)] = outbox_of(db, request_id)
    assert event_type == CENSUS_LOADED
    assert (payload["years"], payload["profiles"]) == ([2022], FIXTURE_PROFILES)


def test_each_field_comes_from_its_variable(config, engine, db):
    data = distinct_data()
    with LocalCensusApi({2022: data}) as api:
        result = load(engine, config, api)
    assert result["profiles"] == 9
    rows = {row.geoid: row for row in db("SELECT * FROM census.profiles")}
    kept = [g for g in data if "CDP" not in g["name"]]
    assert sorted(rows) == sorted(g["geoid"] for g in kept)
    for g in kept:
        column = 0 if g["state_fips"] == "37" else 1
        row = rows[g["geoid"]]
        assert (row.name, row.year) == (g["name"], 2022)
        assert {field: getattr(row, field) for field in FIELDS} == {
            field: g[TABLE[field][column]] for field in FIELDS}, g["geoid"]
        assert {field: getattr(row, field) for field in POPULATION} == {
            field: sum(g[variable] for variable in variables)
            for field, variables in POPULATION.items()}, g["geoid"]


def test_values_the_census_does_not_have_count_as_zero(config, engine, db):
    data = distinct_data()
    nc_county, md_place = data[0], data[5]
    assert (nc_county["name"], md_place["name"]) == ("Ash County, North Carolina",
                                                     "Elm town, Maryland")
    nc_county["B03002_007E"] = None          # null in the answer
    nc_county["B03002_008E"] = "-666666666"  # the Bureau's "not available"
    md_place["C02003_005E"] = -222222222
    with LocalCensusApi({2022: data}) as api:
        load(engine, config, api)
    assert db("SELECT native_hawaiian, other, black FROM census.profiles WHERE geoid = :g",
              g=nc_county["geoid"]) == [(0, 0, nc_county["B03002_004E"])]
    assert db("SELECT native_american, asian FROM census.profiles WHERE geoid = :g",
              g=md_place["geoid"]) == [(0, md_place["C02003_006E"])]
    # In a sum too: pop_other is native Hawaiian + some other race + two or more.
    assert db("SELECT pop_other, pop_black FROM census.profiles WHERE geoid = :g",
              g=nc_county["geoid"]) == [(nc_county["B03002_009E"], nc_county["B03002_004E"])]


def test_a_server_error_is_retried(config, engine, db, api):
    api.responder = lambda count, path, params: (500, "error: internal") if count == 1 else None
    result = load(engine, config, api)
    assert (result["status"], result["profiles"]) == ("loaded", FIXTURE_PROFILES)
    assert len(api.requests) == REQUESTS + 1
    assert api.requests[0] == api.requests[1]
    assert db("SELECT count(*) FROM census.profiles") == [(FIXTURE_PROFILES,)]


def test_too_many_requests_is_retried(config, engine, db, api):
    api.responder = lambda count, path, params: (
        (429, "Too Many Requests", {"Retry-After": "0"}) if count in (3, 4) else None)
    result = load(engine, config, api)
    assert (result["status"], result["profiles"]) == ("loaded", FIXTURE_PROFILES)
    assert len(api.requests) == REQUESTS + 2
    assert api.requests[2] == api.requests[3] == api.requests[4]
    assert db("SELECT count(*) FROM census.profiles") == [(FIXTURE_PROFILES,)]


def test_failures_that_last_fail_after_the_retries(config, engine, db, api):
    load(engine, config, api)
    before = stored(db)
    api.requests.clear()
    api.responder = lambda count, path, params: (
        (503, "Service Unavailable: back soon") if params.get("in") == "state:24"
        and params["for"] == "place:*" else None)
    request_id = uuid.uuid4().hex
    result = load(engine, config, api, request_id=request_id, retries=2)

    assert result["status"] == "failed"
    assert "the Census API answered 503 for md places 2022 after 3 tries" in result["error"]
    assert "Service Unavailable: back soon" in result["error"]
    md_places = [params for _, params in api.requests
                 if params.get("in") == "state:24" and params["for"] == "place:*"]
    assert len(md_places) == 3
    assert stored(db) == before
    assert load_row(db, request_id) == [("failed", [2022], None, result["error"], True)]


def test_a_bad_key_fails_at_once_and_keeps_the_profiles(config, engine, db, api):
    load(engine, config, api)
    before = stored(db)
    assert len(before) == FIXTURE_PROFILES
    api.requests.clear()
    request_id = uuid.uuid4().hex
    result = load(engine, config, api, request_id=request_id, census_api_key="bad-key")

    assert result["status"] == "failed"
    assert len(api.requests) == 1
    assert result["error"].startswith("the Census API answered 400 for nc counties 2022: ")
    assert "A valid key must be included with each data API request" in result["error"]
    assert "Invalid Key" in result["error"]
    assert stored(db) == before
    assert load_row(db, request_id) == [("failed", [2022], None, result["error"], True)]
    [(event_type, payload)] = outbox_of(db, request_id)
    assert event_type == CENSUS_FAILED
    assert payload == {"request_id": request_id, "years": [2022], "error": result["error"]}


def test_an_unknown_variable_fails_at_once_with_the_api_message(config, engine, db):
    data = [{name: value for name, value in g.items() if name != "C02003_009E"}
            for g in load_fixture()["2022"]]
    with LocalCensusApi({2022: data}) as api:
        result = load(engine, config, api)
    assert result["status"] == "failed"
    assert result["error"] == ("the Census API answered 400 for md counties 2022: "
                               "error: unknown variable 'C02003_009E'")
    assert len(api.requests) == 4  # nc counties, places and state, then md counties
    assert db("SELECT count(*) FROM census.profiles") == [(0,)]


@pytest.mark.parametrize("body, reason", [
    ("<html><body>Down for maintenance</body></html>", "not JSON: Down for maintenance"),
    ('{"error": "nope"}', "not a JSON array of arrays"),
    ('[["NAME", "GEO_ID", "state", "place"], ["Elm town, Maryland", "1600000US2420000", '
     '"24", "20000"]]', "the header row lacks C02003_001E"),
    ("", "an empty answer"),
])
def test_a_malformed_answer_fails_clearly_and_keeps_the_profiles(
        config, engine, db, api, body, reason):
    load(engine, config, api)
    before = stored(db)
    api.requests.clear()
    # The fifth request asks for Maryland's places (after nc's three and md's counties).
    api.responder = lambda count, path, params: (200, body) if count == 5 else None
    result = load(engine, config, api)

    assert result["status"] == "failed"
    assert result["error"].startswith("malformed response for md places 2022: ")
    assert reason in result["error"]
    assert len(api.requests) == 5  # not retried, and nothing after it asked for
    assert stored(db) == before


def test_a_row_of_the_wrong_length_is_malformed(config, engine, db, api):
    def short_row(count, path, params):
        if count == 1:
            header = params["get"].split(",") + ["state", "county"]
            return 200, json.dumps([header, ["Ash County, North Carolina", "0500000US37001"]])
        return None

    api.responder = short_row
    result = load(engine, config, api)
    assert result["error"] == ("malformed response for nc counties 2022: "
                               "row 2 has 2 values for 14 columns")
    assert db("SELECT count(*) FROM census.profiles") == [(0,)]


def test_several_years_are_kept_side_by_side(config, engine, db):
    fixture = load_fixture()["2022"]
    earlier = copy.deepcopy(fixture)
    for g in earlier:
        for name in g:
            if name.endswith("E") and name[:1] in "BC":
                g[name] -= 1
    with LocalCensusApi({2021: earlier, 2022: copy.deepcopy(fixture)}) as api:
        both = load(engine, config, api, years=[2022, 2021])
        assert (both["status"], both["years"], both["profiles"]) == (
            "loaded", [2021, 2022], 2 * FIXTURE_PROFILES)
        assert db("SELECT year, total FROM census.profiles WHERE geoid = '0500000US37063' "
                  "ORDER BY year") == [(2021, 331411), (2022, 331412)]
        kept_2021 = [row for row in stored(db) if row.year == 2021]

        # A new 2022 release: one place less, one total changed.
        api.data["2022"] = [g for g in api.data["2022"] if g["geoid"] != "1600000US3755000"]
        nc_county = next(g for g in api.data["2022"] if g["geoid"] == "0500000US37063")
        nc_county["B03002_001E"] = 340000
        again = load(engine, config, api, years=[2022])

    assert (again["status"], again["profiles"]) == ("loaded", FIXTURE_PROFILES - 1)
    assert [row for row in stored(db) if row.year == 2021] == kept_2021
    assert db("SELECT year, count(*) FROM census.profiles GROUP BY year ORDER BY year") == [
        (2021, FIXTURE_PROFILES), (2022, FIXTURE_PROFILES - 1)]
    assert db("SELECT year, total FROM census.profiles WHERE geoid = '0500000US37063' "
              "ORDER BY year") == [(2021, 331411), (2022, 340000)]
    assert db("SELECT year FROM census.profiles WHERE geoid = '1600000US3755000'") == [(2021,)]


def test_years_come_from_the_request_then_the_settings_then_the_default(config, engine, db):
    fixture = load_fixture()["2022"]
    with LocalCensusApi({2021: fixture, 2022: fixture}) as api:
        default = load(engine, config, api, census_years=())
        assert default["years"] == list(acs.DEFAULT_YEARS) == [2022]
        assert {path for path, _ in api.requests} == {"/data/2022/acs/acs5"}

        api.requests.clear()
        configured = load(engine, config, api, census_years=("2021",))
        assert configured["years"] == [2021]
        assert {path for path, _ in api.requests} == {"/data/2021/acs/acs5"}

        api.requests.clear()
        requested = load(engine, config, api, years=[2021], census_years=("2022",))
        assert requested["years"] == [2021]
        assert {path for path, _ in api.requests} == {"/data/2021/acs/acs5"}


def test_a_request_delivered_again_is_not_fetched_again(config, engine, db, api):
    request_id = uuid.uuid4().hex
    first = load(engine, config, api, request_id=request_id)
    assert len(api.requests) == REQUESTS
    again = load(engine, config, api, request_id=request_id)
    assert again == first
    assert len(api.requests) == REQUESTS
    assert [event for event, _ in outbox_of(db, request_id)] == [CENSUS_LOADED]

    failing_id = uuid.uuid4().hex
    failed = load(engine, config, api, years=[2019], request_id=failing_id)
    assert failed["status"] == "failed"
    assert len(api.requests) == REQUESTS + 1
    assert load(engine, config, api, years=[2019], request_id=failing_id) == failed
    assert len(api.requests) == REQUESTS + 1
    assert [event for event, _ in outbox_of(db, failing_id)] == [CENSUS_FAILED]


def test_the_local_api_speaks_the_census_format(api):
    url = f"{api.url}/data/2022/acs/acs5"
    answer = requests.get(url, params={"get": "NAME,GEO_ID,B03002_001E", "for": "county:*",
                                       "in": "state:37", "key": KEY}, timeout=10)
    assert answer.status_code == 200
    table = answer.json()
    assert table[0] == ["NAME", "GEO_ID", "B03002_001E", "state", "county"]
    assert ["Alder County, North Carolina", "0500000US37063", "331412", "37", "063"] in table
    assert len(table) == 4

    places = requests.get(url, params={"get": "NAME", "for": "place:*", "in": "state:24"},
                          timeout=10).json()
    assert places[0] == ["NAME", "state", "place"]
    assert ["Elk Meadow CDP, Maryland", "24", "19125"] in places

    unknown = requests.get(url, params={"get": "NAME,XYZ", "for": "county:*",
                                        "in": "state:37"}, timeout=10)
    assert (unknown.status_code, unknown.text) == (400, "error: unknown variable 'XYZ'")
    bad_key = requests.get(url, params={"get": "NAME", "for": "county:*", "in": "state:37",
                                        "key": "bad-key"}, timeout=10)
    assert bad_key.status_code == 400 and "Invalid Key" in bad_key.text
    no_for = requests.get(url, params={"get": "NAME", "in": "state:37"}, timeout=10)
    assert no_for.status_code == 400
    assert requests.get(f"{api.url}/data/1999/acs/acs5", params={
        "get": "NAME", "for": "county:*", "in": "state:37"}, timeout=10).status_code == 404
    assert [params.get("key") for _, params in api.requests] == [
        KEY, None, None, "bad-key", None, None]


def test_the_local_api_answers_a_state_as_the_census_api_does(api):
    url = f"{api.url}/data/2022/acs/acs5"
    answer = requests.get(url, params={"get": "NAME,GEO_ID,B03002_001E,B03002_012E",
                                       "for": "state:37", "key": KEY}, timeout=10)
    assert answer.status_code == 200
    assert answer.json() == [["NAME", "GEO_ID", "B03002_001E", "B03002_012E", "state"],
                             ["North Carolina", "0400000US37", "10539171", "1043207", "37"]]
    maryland = requests.get(url, params={"get": "NAME,GEO_ID", "for": "state:24"},
                            timeout=10).json()
    assert maryland == [["NAME", "GEO_ID", "state"], ["Maryland", "0400000US24", "24"]]
    every = requests.get(url, params={"get": "GEO_ID", "for": "state:*"}, timeout=10).json()
    assert sorted(every[1:]) == [["0400000US17", "17"], ["0400000US24", "24"],
                                 ["0400000US37", "37"]]
    # A state is asked for by itself; counties and places within a state.
    within = requests.get(url, params={"get": "NAME", "for": "state:37", "in": "state:37"},
                          timeout=10)
    assert (within.status_code, within.text) == (
        400, "error: unknown/unsupported geography hierarchy")
    counties = requests.get(url, params={"get": "NAME", "for": "county:*"}, timeout=10)
    assert counties.status_code == 400
    unknown = requests.get(url, params={"get": "NAME", "for": "state:99"}, timeout=10)
    assert (unknown.status_code, unknown.text) == (204, "")


def test_the_population_columns_are_the_declared_ones():
    assert tuple(acs.POPULATION_VARIABLES) == CENSUS_POPULATION == tuple(POPULATION)
    assert dict(acs.POPULATION_VARIABLES) == POPULATION


def test_each_variable_is_asked_for_once(config):
    for state, fips in FIPS.items():
        for geography in acs.GEOGRAPHIES:
            params = acs.request_params(config, state, geography)
            names = params["get"].split(",")
            assert len(names) == len(set(names)), (state, geography, names)
            assert {name for variables in POPULATION.values() for name in variables} <= set(
                names)
            if geography == "state":
                assert (params["for"], "in" in params) == (f"state:{fips}", False)
            else:
                assert (params["for"], params["in"]) == (f"{geography}:*", f"state:{fips}")
    # nc's own table is B03002: nothing more to ask for; md and il add B03002's races.
    assert len(acs.request_params(config, "nc", "county")["get"].split(",")) == 2 + 10
    assert len(acs.request_params(config, "md", "county")["get"].split(",")) == 2 + 10 + 7


# The test's own B03002 values, (003 white, 004 black, 005 native American,
# 006 Asian, 007 native Hawaiian, 008 some other race, 009 two or more races,
# 012 Hispanic), and the population counts they must give (pop_other is
# 007 + 008 + 009).
POPULATION_DATA = {
    ("nc", "county", "001", "Ash County, North Carolina"): (
        (41203, 18554, 912, 3307, 41, 388, 2210, 7719),
        (41203, 18554, 912, 3307, 2639, 7719)),
    ("nc", "place", "10000", "Ash city, North Carolina"): (
        (12870, 6021, 144, 980, 12, 97, 603, 2150),
        (12870, 6021, 144, 980, 712, 2150)),
    ("nc", "state", "", "North Carolina"): (
        (6400123, 2201456, 101234, 320987, 7001, 40321, 310654, 1050876),
        (6400123, 2201456, 101234, 320987, 357976, 1050876)),
    ("md", "county", "001", "Elm County, Maryland"): (
        (90112, 60443, 702, 15008, 150, 1201, 7004, 30070),
        (90112, 60443, 702, 15008, 8355, 30070)),
    ("md", "place", "20000", "Elm town, Maryland"): (
        (3501, 2288, 19, 402, 3, 41, 260, 977),
        (3501, 2288, 19, 402, 304, 977)),
    ("md", "state", "", "Maryland"): (
        (2950321, 1790456, 12001, 405332, 2222, 26001, 220456, 720999),
        (2950321, 1790456, 12001, 405332, 248679, 720999)),
    ("il", "county", "001", "Oak County, Illinois"): (
        (250301, 40122, 1503, 12004, 88, 902, 9100, 60321),
        (250301, 40122, 1503, 12004, 10090, 60321)),
    ("il", "place", "30000", "Oak village, Illinois"): (
        (7702, 1105, 31, 250, 2, 17, 188, 1460),
        (7702, 1105, 31, 250, 207, 1460)),
    ("il", "state", "", "Illinois"): (
        (7600999, 1770002, 14003, 710004, 3003, 34004, 350005, 2270006),
        (7600999, 1770002, 14003, 710004, 387012, 2270006)),
}
B03002_POPULATION = ("B03002_003E", "B03002_004E", "B03002_005E", "B03002_006E",
                     "B03002_007E", "B03002_008E", "B03002_009E", "B03002_012E")


def population_data() -> list[dict]:
    """POPULATION_DATA's geographies; every other variable has a value of its
    own (md's and il's C02003 races differ from their B03002 ones)."""
    data = []
    for number, ((state, kind, code, name), (values, _)) in enumerate(
            POPULATION_DATA.items(), start=1):
        filler = {variable: 900000 + number * 100 + index
                  for index, variable in enumerate(ALL_VARIABLES, start=1)}
        data.append(geography(state, kind, code, name,
                              {**filler, **dict(zip(B03002_POPULATION, values, strict=True))}))
    return data


def test_the_population_of_a_county_a_place_and_the_state_of_each_state(config, engine, db):
    data = population_data()
    with LocalCensusApi({2022: data}) as api:
        result = load(engine, config, api)
    assert (result["status"], result["profiles"]) == ("loaded", 9), result
    for g, ((state, kind, _, name), (_, population)) in zip(
            data, POPULATION_DATA.items(), strict=True):
        assert db("SELECT state, name FROM census.profiles WHERE geoid = :g",
                  g=g["geoid"]) == [(state, name)]
        assert population_of(db, g["geoid"]) == population, (state, kind)
    # The states' own rows, by the GEO_ID the API gives them.
    assert population_of(db, "0400000US37") == (
        6400123, 2201456, 101234, 320987, 357976, 1050876)
    assert population_of(db, "0400000US24") == (
        2950321, 1790456, 12001, 405332, 248679, 720999)
    assert population_of(db, "0400000US17") == (
        7600999, 1770002, 14003, 710004, 387012, 2270006)
    # md's and il's fields stay C02003's: the population does not replace them.
    md_county = data[3]
    assert db("SELECT white, black, other, pop_white, pop_black FROM census.profiles "
              "WHERE geoid = :g", g=md_county["geoid"]) == [
        (md_county["C02003_003E"], md_county["C02003_004E"], md_county["C02003_008E"],
         90112, 60443)]


def test_pop_other_is_the_sum_of_three_variables(config, engine, db):
    data = population_data()
    ash = data[0]
    with LocalCensusApi({2022: data}) as api:
        load(engine, config, api)
        assert population_of(db, ash["geoid"])[4] == 41 + 388 + 2210
        # Each of the three counts: changing one changes the sum by as much.
        for variable, delta in (("B03002_007E", 1000), ("B03002_008E", 20000),
                                ("B03002_009E", 300000)):
            before = population_of(db, ash["geoid"])[4]
            api.data["2022"][0] = {**api.data["2022"][0],
                                   variable: api.data["2022"][0][variable] + delta}
            assert load(engine, config, api)["status"] == "loaded"
            assert population_of(db, ash["geoid"])[4] == before + delta, variable
    assert population_of(db, ash["geoid"])[4] == 41 + 388 + 2210 + 321000


def test_a_missing_state_row_is_malformed(config, engine, db, api):
    load(engine, config, api)
    before = stored(db)
    data = [g for g in load_fixture()["2022"] if g["geoid"] != "0400000US24"]
    with LocalCensusApi({2022: data}) as missing:
        result = load(engine, config, missing)
        asked = [(params["for"], params.get("in")) for _, params in missing.requests]

    assert result["status"] == "failed"
    assert result["error"] == (
        "malformed response for md state 2022: no row for the state itself "
        "(Maryland, state:24): an empty answer (status 204)")
    # Nothing asked for after it, nothing stored.
    assert asked[-1] == ("state:24", None) and len(asked) == 6
    assert stored(db) == before


def test_a_state_answer_without_rows_or_with_two_is_malformed(config, engine, db, api):
    def answering(rows):
        def responder(count, path, params):
            if params["for"] == "state:17":
                header = params["get"].split(",") + ["state"]
                return 200, json.dumps([header, *rows(header)])
            return None
        return responder

    api.responder = answering(lambda header: [])
    result = load(engine, config, api)
    assert result["error"] == ("malformed response for il state 2022: "
                               "no row for the state itself (Illinois, state:17)")

    def two(header):
        return [[{"NAME": f"Illinois {n}", "GEO_ID": f"0400000US17{n}", "state": "17"}
                 .get(name, "5") for name in header] for n in (1, 2)]

    api.responder = answering(two)
    result = load(engine, config, api)
    assert result["error"] == ("malformed response for il state 2022: 2 rows for the "
                               "state, not one: 0400000US171, 0400000US172")
    assert db("SELECT count(*) FROM census.profiles") == [(0,)]


def wait_for(listener: EventListener, event_type: str, request_id: str, service) -> dict:
    def found():
        return [payload for payload in listener.of(event_type)
                if payload.get("request_id") == request_id]
    try:
        return wait_until(found, timeout=90)[0]
    except AssertionError:
        print(service.log())
        raise


def test_the_service_loads_on_request_and_reports_failures(config, db, start_service, api):
    listener = EventListener(config.amqp_uri, ["census"])
    try:
        service = start_service("services.census", CENSUS_API_URL=api.url,
                                CENSUS_API_KEY=KEY, CENSUS_YEARS="2022")
        dispatch = publisher(config)

        request_id = uuid.uuid4().hex
        dispatch("admin", CENSUS_REQUESTED, {"request_id": request_id, "years": None})
        loaded = wait_for(listener, CENSUS_LOADED, request_id, service)
        assert (loaded["years"], loaded["profiles"]) == ([2022], FIXTURE_PROFILES)
        assert db("SELECT count(*) FROM census.profiles WHERE year = 2022") == [
            (FIXTURE_PROFILES,)]
        assert db(f"SELECT {PROFILE_COLUMNS} FROM census.profiles WHERE geoid = :g",
                  g="0500000US37063") == [EXPECTED["0500000US37063"]]
        assert {params["key"] for _, params in api.requests} == {KEY}
        before = stored(db)

        failing_id = uuid.uuid4().hex
        dispatch("admin", CENSUS_REQUESTED, {"request_id": failing_id, "years": [2019]})
        failed = wait_for(listener, CENSUS_FAILED, failing_id, service)
        assert failed == {"request_id": failing_id, "years": [2019], "error": (
            "the Census API answered 404 for nc counties 2019: "
            "error: unknown/unsupported dataset: /data/2019/acs/acs5")}
        assert stored(db) == before
        assert load_row(db, failing_id) == [("failed", [2019], None, failed["error"], True)]

        with ClusterRpcProxy(config.nameko_config(), timeout=60) as rpc:
            answer = rpc.census.refresh([2022])
        assert (answer["status"], answer["years"], answer["profiles"]) == (
            "loaded", [2022], FIXTURE_PROFILES)
        rpc_loaded = wait_for(listener, CENSUS_LOADED, answer["request_id"], service)
        assert rpc_loaded["profiles"] == FIXTURE_PROFILES
        assert load_row(db, answer["request_id"]) == [
            ("loaded", [2022], FIXTURE_PROFILES, None, True)]
    finally:
        listener.close()
