"""The sample releases `make run` imports load cleanly through the pipeline,
dirty lines and all, and every state's numbers come out of a refresh."""

from __future__ import annotations

import uuid

import pytest
import requests

from odp.stack import samples
from services.ingest.pipeline import run_import
from services.stats.refresh import refresh
from shared.states import STATES

SAMPLES = samples()


def test_every_state_has_a_sample_release():
    assert set(SAMPLES) == set(STATES)


@pytest.mark.parametrize("state", sorted(SAMPLES))
def test_each_sample_release_loads_and_refreshes(config, engine, db, state):
    outcome = run_import({"import_id": f"sample-test-{uuid.uuid4().hex[:8]}", "state": state,
                          "url": SAMPLES[state].as_uri()}, config)

    assert outcome["event"] == "dataset_loaded", outcome["payload"]
    payload = outcome["payload"]
    assert payload["counts"]["stops"] > 2000
    # The samples carry the dirt of real releases: some lines are rejected or
    # dropped, never so many that the import fails.
    assert payload["rejected_rows"] + sum(payload["dropped"].values()) > 0
    assert refresh(engine, state, payload["data_version"]) is not None
    (facts,) = db("SELECT facts FROM stats.facts WHERE state = :state", state=state)
    assert facts.facts["total_stops"] == payload["counts"]["stops"]
    assert len(facts.facts["top_agencies"]) == 5


def test_make_run_maps_the_sample_agencies_and_loads_their_profiles(
        config, admin_config, engine, db, start_admin, start_gateway, start_service):
    from kombu import Connection
    from sqlalchemy import text

    from odp.stack import load_sample_census
    from services.census.local_api import LocalCensusApi
    from shared.events import ADMIN_SOURCE, CENSUS_HANDLER, CENSUS_REQUESTED
    from shared.nameko_support import handler_queue
    from tests.conftest import OPERATOR_TOKEN
    from tests.support.census import expected_profile
    from tests.support.waiting import wait_until

    outcome = run_import({"import_id": f"sample-test-{uuid.uuid4().hex[:8]}", "state": "nc",
                          "url": SAMPLES["nc"].as_uri()}, config)
    refresh(engine, "nc", outcome["payload"]["data_version"])
    # As on a fresh machine: no mapping, no profiles yet.
    with engine.begin() as conn:
        for table in ("admin.agency_mappings", "stats.agency_mappings", "census.profiles"):
            conn.execute(text(f"DELETE FROM {table}"))
    # Refreshes earlier tests left queued would load profiles first.
    with Connection(admin_config.amqp_uri) as broker:
        queue = handler_queue(admin_config, ADMIN_SOURCE, CENSUS_REQUESTED, "census",
                              CENSUS_HANDLER).bind(broker.default_channel)
        queue.declare()
        queue.purge()
    with LocalCensusApi() as census_api:
        start_service("services.census", CENSUS_API_URL=census_api.url)
        start_service("services.stats")
        start_admin()
        base = start_gateway()
        said: list[str] = []
        load_sample_census(admin_config.with_changes(port=int(base.rsplit(":", 1)[1]),
                                                     odp_token=OPERATOR_TOKEN), said.append)

        assert said[-1].startswith("census profiles: loaded"), said
        alder = requests.get(f"{base}/nc/api/agency/", timeout=10).json()
        (alder_id,) = [a["id"] for a in alder if a["name"] == "Alder Police Department"]
        wait_until(lambda: requests.get(f"{base}/nc/api/agency/{alder_id}/", timeout=10)
                   .json()["census_profile"] == expected_profile("1600000US3719000"),
                   timeout=60)
    with engine.begin() as conn:
        for table in ("admin.agency_mappings", "stats.agency_mappings"):
            conn.execute(text(f"DELETE FROM {table}"))
