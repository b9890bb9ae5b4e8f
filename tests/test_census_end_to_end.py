"""Census profiles on the real stack: the census service fetching from a local
server that speaks the Census API, stats republishing the agencies, admin
following the operator's refresh, and an agency mapped to a county showing
that county's profile through the public API."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.census.local_api import LocalCensusApi
from tests.support.census import STATE_PROFILES, expected_population, expected_profile
from tests.support.gateway import ALDER, BIRCHWOOD
from tests.support.waiting import wait_until

ALDER_COUNTY = "0500000US37063"
BIRCHWOOD_COUNTY = "0500000US37119"
# API.md's census_profile, in its order: the population counts stored beside
# a profile (for the disparities) are not part of it.
PROFILE_KEYS = ["white", "black", "native_american", "asian", "other", "hispanic",
                "non_hispanic", "total"]


@pytest.fixture
def census_api():
    failing = {"on": False}

    def responder(count, path, params):
        if failing["on"]:
            return 400, "error: invalid 'for' argument"
        return None

    server = LocalCensusApi(responder=responder)
    server.failing = failing
    yield server
    server.close()


@pytest.fixture
def forget_mappings(engine):
    """The nc mapping this test uploads names the gateway tests' agencies:
    it goes with the test, whether or not stats has applied it yet."""
    yield
    with engine.begin() as conn:
        for table in ("admin.agency_mappings", "stats.agency_mappings"):
            conn.execute(text(f"DELETE FROM {table} WHERE state = 'nc'"))


def refresh_census(operator) -> dict:
    response = operator.call("POST", "/admin/api/census/refresh/", json={})
    assert response.status_code == 202, response.text
    request_id = response.json["request_id"]
    return wait_until(lambda: (record := operator.call(
        "GET", f"/admin/api/census/refresh/{request_id}/").json)["status"] != "requested"
        and record, timeout=120)


def profile_of(operator, agency_id: int) -> dict:
    return operator.simulate_get(f"/nc/api/agency/{agency_id}/").json["census_profile"]


def test_an_agency_mapped_to_a_county_shows_its_profile(operator, town, start_service,
                                                        census_api, db, forget_mappings):
    start_service("services.stats")
    start_service("services.census", CENSUS_API_URL=census_api.url, CENSUS_YEARS="2022")
    mapping = (f"code,name,geoid\n{ALDER},{ALDER},{ALDER_COUNTY}\n"
               f"{BIRCHWOOD},{BIRCHWOOD},\n")
    assert operator.call("PUT", "/admin/api/agencies/nc/mapping/", body=mapping
                         ).status_code == 200

    record = refresh_census(operator)
    assert record["status"] == "loaded", record
    assert record["profiles"] == db("SELECT count(*) FROM census.profiles")[0][0] > 0
    assert not db("SELECT 1 FROM census.profiles WHERE name LIKE '%CDP%'")

    # The population counts and each state's own profile are stored...
    population = ", ".join(expected_population(ALDER_COUNTY))
    assert db(f"SELECT {population} FROM census.profiles WHERE geoid = :g",
              g=ALDER_COUNTY) == [tuple(expected_population(ALDER_COUNTY).values())]
    assert db("SELECT state, geoid, name FROM census.profiles WHERE geoid LIKE '0400000US%' "
              "ORDER BY state") == [(state, *STATE_PROFILES[state])
                                    for state in sorted(STATE_PROFILES)]

    # ...and the agency's census_profile is what it was: API.md's keys, in order.
    alder = expected_profile(ALDER_COUNTY)
    assert list(alder) == PROFILE_KEYS
    wait_until(lambda: profile_of(operator, town[ALDER]) == alder, timeout=60)
    assert list(profile_of(operator, town[ALDER])) == PROFILE_KEYS
    assert not [key for key in profile_of(operator, town[ALDER]) if key.startswith("pop_")]
    assert profile_of(operator, town[BIRCHWOOD]) == {}

    # A mapping upload takes effect without a new stop import.
    mapping += f"{BIRCHWOOD},{BIRCHWOOD},{BIRCHWOOD_COUNTY}\n"
    mapping = mapping.replace(f"{BIRCHWOOD},{BIRCHWOOD},\n", "")
    assert operator.call("PUT", "/admin/api/agencies/nc/mapping/", body=mapping
                         ).status_code == 200
    wait_until(lambda: profile_of(operator, town[BIRCHWOOD])
               == expected_profile(BIRCHWOOD_COUNTY), timeout=60)

    # A refused refresh fails with the Census API's message; the profiles stay.
    census_api.failing["on"] = True
    failed = refresh_census(operator)
    assert failed["status"] == "failed"
    assert "invalid 'for' argument" in failed["error"]
    assert profile_of(operator, town[ALDER]) == alder
