"""The whole flow as `make run` runs it: ingest, stats and the gateway under
gunicorn as processes, a release imported with `odp ingest`, and the
numbers read over HTTP. Nothing is published by hand."""

from __future__ import annotations

import subprocess
import sys
import uuid

import requests

from services.gateway.resources.aggregates import AGGREGATES
from shared.states import NC
from tests.conftest import ROOT
from tests.support.releases import END_TO_END_AGENCY as AGENCY
from tests.support.releases import release_of


def agency_names(base: str) -> set[str]:
    return {agency["name"] for agency in requests.get(f"{base}/nc/api/agency/",
                                                      timeout=10).json()}


def odp_ingest(config, url: str) -> str:
    import_id = f"e2e-{uuid.uuid4().hex[:8]}"
    subprocess.run([sys.executable, "-m", "odp", "ingest", "nc", "--url", url,
                    "--import-id", import_id], cwd=ROOT, env=config.as_environ(),
                   check=True, capture_output=True, timeout=300)
    return import_id


def agency_id(base: str) -> int:
    agencies = requests.get(f"{base}/nc/api/agency/", timeout=10).json()
    return next(agency["id"] for agency in agencies if agency["name"] == AGENCY)


def test_new_numbers_reach_http_after_the_refresh_and_not_before(
        config, release, events, start_service, start_gateway):
    base = start_gateway()
    start_service("services.ingest")
    start_service("services.stats", ODP_URL=base)

    first = odp_ingest(config, release(release_of(3)).as_uri())
    events.wait_for("stats_refreshed", first)
    stops_url = f"{base}/nc/api/agency/{agency_id(base)}/stops/"
    before = requests.get(stops_url, timeout=10)
    assert before.status_code == 200
    assert before.json() == [{"year": 2016, "asian": 0, "black": 2, "hispanic": 0,
                              "native_american": 0, "non-hispanic": 3, "other": 0,
                              "white": 1}]

    # The stats service is down: the new release is live in nc, but the
    # published numbers stay those of the last refresh.
    start_service.stop_all("services.stats")
    newcomer = f"Newcomer Police Department {uuid.uuid4().hex[:6]}"
    second = odp_ingest(config, release(release_of(5, newcomer)).as_uri())
    events.wait_for("dataset_loaded", second)
    unchanged = requests.get(stops_url, timeout=10)
    assert unchanged.json() == before.json()
    assert unchanged.headers["ETag"] == before.headers["ETag"]
    assert newcomer not in agency_names(base)

    start_service("services.stats", ODP_URL=base)
    events.wait_for("stats_refreshed", second)
    after = requests.get(stops_url, timeout=10)
    assert after.json()[0]["black"] == 3 and after.json()[0]["white"] == 2
    assert after.headers["ETag"] != before.headers["ETag"]
    assert newcomer in agency_names(base)
    assert requests.get(stops_url, headers={"If-None-Match": after.headers["ETag"]},
                        timeout=10).status_code == 304


def test_the_largest_agencies_are_cached_before_the_refresh_is_announced(
        config, release, events, start_service, start_gateway):
    base = start_gateway()
    start_service("services.ingest")
    start_service("services.stats", ODP_URL=base)
    import_id = odp_ingest(config, release(release_of(4)).as_uri())
    refreshed = events.wait_for("stats_refreshed", import_id)

    facts = requests.get(f"{base}/nc/api/facts/", timeout=10).json()
    top = facts["top_agencies"][0]["id"]
    for name in NC.aggregates:
        response = requests.get(f"{base}/nc/api/agency/{top}/{name}/", timeout=10)
        assert response.headers["X-Cache"] == "hit", name
    assert refreshed["generation"] >= 1

    printed = subprocess.run([sys.executable, "-m", "odp", "facts", "nc"], cwd=ROOT,
                             env=config.as_environ() | {"ODP_URL": base},
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith(f"Timeframe: {facts['start_date']} - "
                                     f"{facts['end_date']}\nStops: {facts['total_stops']:,}\n")
    assert f"Id {top}: " in printed.stdout


def test_the_warmed_paths_are_the_gateways_routes():
    assert set(NC.aggregates) == set(AGGREGATES)
