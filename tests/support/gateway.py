"""Helpers the gateway tests share (this module holds no tests).

The live `nc` schema is shared by every test of a session, so a test loads
its own release right before it queries, through the real import and stats
refresh, and finds its agencies' ids by name through the API.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager

from falcon.testing import TestClient

from services.gateway.app import create_app
from services.gateway.backends import Deps, build_deps
from services.ingest.pipeline import run_import
from services.stats.refresh import refresh

ALDER = "Alder Police Department"
BIRCHWOOD = "Birchwood Police Department"
QUIET = "Quiet Hollow Police Department"
COUNT_KEYS = ("asian", "black", "hispanic", "native_american", "non-hispanic", "other",
              "white")
RACE_KEYS = ("asian", "black", "native_american", "other", "white")
ETHNICITY_KEYS = ("hispanic", "non-hispanic")


@contextmanager
def gateway_client(config, deps: Deps | None = None):
    """A TestClient of an app built with `config` (and `deps` when given)."""
    own = deps is None
    deps = deps or build_deps(config)
    try:
        yield TestClient(create_app(config, deps))
    finally:
        if own:
            deps.close()


def load_and_refresh(config, engine, release, write) -> dict:
    """Import the release `write` builds, then refresh the nc stats; the
    dataset_loaded payload."""
    request = {"import_id": f"gateway-{uuid.uuid4().hex[:10]}", "state": "nc",
               "url": release(write).as_uri()}
    outcome = run_import(request, config)
    assert outcome["event"] == "dataset_loaded", outcome
    payload = outcome["payload"]
    assert refresh(engine, "nc", payload["data_version"]) is not None
    return payload


def agency_ids(client) -> dict[str, int]:
    response = client.simulate_get("/nc/api/agency/")
    assert response.status_code == 200, response.text
    return {agency["name"]: agency["id"] for agency in response.json}


def row(year: int, **counts) -> dict:
    """A count row with every count key, zero unless given; group keys
    (purpose=..., search_type=...) go after the year, as in API.md."""
    groups = {key: value for key, value in counts.items() if isinstance(value, str)}
    numbers = {key.replace("non_hispanic", "non-hispanic"): value
               for key, value in counts.items() if not isinstance(value, str)}
    return {"year": year, **groups, **{key: numbers.get(key, 0) for key in COUNT_KEYS}}


def assert_families_sum_alike(rows: list[dict]) -> None:
    for counts in rows:
        assert sum(counts[key] for key in RACE_KEYS) == sum(
            counts[key] for key in ETHNICITY_KEYS), counts


def town_release(writer) -> None:
    """Six Alder stops around a New Year in Raleigh, one Birchwood stop and
    a Quiet Hollow stop with no driver (so nothing of it is counted)."""
    writer.stop(1, ALDER, "2015-03-01 08:30:00", purpose=1, action=1, officer_id="A1",
                engage_force=1)
    writer.person(11, 1, "D", 30, "M", "N", "W")
    writer.person(12, 1, "P", 25, "F", "H", "B")
    writer.search(101, 1, 11, search_type=1)
    writer.search(102, 1, 11, search_type=3)
    writer.contraband(201, 101, 11, 1, grams="3")
    writer.contraband(202, 102, 11, 1, money="40")

    writer.stop(2, ALDER, "2015-12-31 20:00:00", purpose=2, action=2, officer_id="A2")
    writer.person(21, 2, "D", 41, "F", "H", "B")

    writer.stop(3, ALDER, "2015-12-31 23:59:00", purpose=2, action=3, officer_id="A1",
                engage_force=1)
    writer.person(31, 3, "D", 52, "M", "N", "A")
    writer.search(301, 3, 31, search_type=3)

    writer.stop(4, ALDER, "2016-01-01 00:01:00", purpose=1, action=4, officer_id="A2")
    writer.person(41, 4, "D", 19, "F", "H", "I")
    writer.search(401, 4, 41, search_type=5)
    writer.contraband(402, 401, 41, 4, ounces="1")

    # Force without a search is not a use of force in API.md's sense.
    writer.stop(5, ALDER, "2016-06-15 12:00:00", purpose=10, action=5, officer_id="a1",
                engage_force=1)
    writer.person(51, 5, "D", 33, "M", "N", "U")

    writer.stop(6, ALDER, "2016-07-01 09:15:00", purpose=1, action=3, officer_id="A1")
    writer.person(61, 6, "D", 30, "F", "H", "W")
    writer.person(62, 6, "P", 30, "M", "N", "B")

    writer.stop(7, BIRCHWOOD, "2016-02-01 10:00:00")
    writer.person(71, 7, "D", 45, "M", "N", "W")

    writer.stop(8, QUIET, "2016-03-01 10:00:00")
    writer.person(81, 8, "P", 20, "M", "N", "W")
