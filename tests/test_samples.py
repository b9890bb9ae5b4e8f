"""The sample releases `make run` imports load cleanly through the pipeline,
dirty lines and all, and every state's numbers come out of a refresh."""

from __future__ import annotations

import uuid

import pytest

from odp.stack import SAMPLES
from services.ingest.pipeline import run_import
from services.stats.refresh import refresh


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
