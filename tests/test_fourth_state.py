"""A fourth state, Zedland (zz), defined only in the tests
(tests/support/zz_state/): registered through ODP_STATE_PACKAGES, it is
imported through the operator API and the bus, refreshed and served by the
real processes, with no line of the platform's own code naming it."""

from __future__ import annotations

import zipfile

import pytest
import requests
from sqlalchemy import text

from tests.conftest import OPERATOR_TOKEN
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

PACKAGE = "tests.support.zz_state"
HEADER = "stop_id,agency,date,purpose,race,searched,contraband,officer"
LINES = [
    "1,Zed City Police,2019-12-31,1,B,1,1,A7",
    "2,Zed City Police,2020-01-02,1,W,1,0,A7",
    "3,Zed City Police,2020-05-06,2,H,0,0,B2",
    "4,Zed County Sheriff,2020-07-08,3,B,0,0,",
    "5,Zed City Police,not-a-date,1,B,0,0,A7",
]


@pytest.fixture
def zz_cleanup(engine):
    """Zedland's rows and tables go with the test: processes without its
    package must not meet them."""
    yield
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS zz CASCADE"))
        for table in ("stats.zz_stop_summary", "stats.zz_agency_summary", "stats.zz_agencies"):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text("DELETE FROM admin.mails WHERE import_id IN "
                          "(SELECT id FROM admin.imports WHERE state = 'zz')"))
        for table in ("stats.generations", "stats.facts", "ingest.agency_ids",
                      "ingest.import_runs", "admin.imports", "admin.refreshes",
                      "admin.datasets"):
            conn.execute(text(f"DELETE FROM {table} WHERE state = 'zz'"))
        for outbox in ("ingest.outbox", "stats.outbox", "admin.outbox"):
            conn.execute(text(f"DELETE FROM {outbox} WHERE payload->>'state' = 'zz'"))


@pytest.fixture
def zz_release(tmp_path):
    path = tmp_path / "zz.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("stops.csv", "\n".join([HEADER, *LINES]) + "\n")
    return path


def test_a_state_defined_in_one_package_is_imported_refreshed_and_served(
        zz_cleanup, start_admin, start_service, start_gateway, zz_release):
    packages = {"ODP_STATE_PACKAGES": PACKAGE}
    start_admin(**packages)
    # One bad line in five: over the default share of rejects.
    start_service("services.ingest", INGEST_MAX_REJECT_SHARE="0.5", **packages)
    start_service("services.stats", **packages)
    base = start_gateway(**packages)
    operator = requests.Session()
    operator.headers["Authorization"] = f"Bearer {OPERATOR_TOKEN}"

    dataset = operator.post(f"{base}/admin/api/datasets/", timeout=30, json={
        "state": "zz", "name": "Zedland 2020", "date_received": "2026-11-30",
        "url": zz_release.as_uri()})
    assert dataset.status_code == 201, dataset.text
    queued = operator.post(f"{base}/admin/api/datasets/{dataset.json()['id']}/import/",
                           timeout=30)
    assert queued.status_code == 202, queued.text
    record = wait_until(lambda: (found := operator.get(
        f"{base}/admin/api/imports/{queued.json()['import_id']}/", timeout=30).json()
    )["status"] in ("refreshed", "failed") and found, timeout=120)
    assert record["status"] == "refreshed", record["error"]
    assert record["counts"] == {"stops": 4}
    assert record["rejected_rows"] == 1

    facts = requests.get(f"{base}/zz/api/facts/", timeout=30).json()
    assert (facts["total_stops"], facts["total_searches"], facts["total_agencies"]) == (4, 2, 2)
    assert (facts["start_date"], facts["end_date"]) == ("Dec 31, 2019", "Jul 08, 2020")
    agencies = {agency["name"]: agency["id"]
                for agency in requests.get(f"{base}/zz/api/agency/", timeout=30).json()}
    assert set(agencies) == {"Zed City Police", "Zed County Sheriff"}
    city = agencies["Zed City Police"]

    by_reason = requests.get(f"{base}/zz/api/agency/{city}/stops_by_reason/",
                             timeout=30).json()
    assert [(row["year"], row["purpose"], row["black"], row["white"], row["hispanic"])
            for row in by_reason["stops"]] == [
        (2019, "Speeding", 1, 0, 0), (2020, "Speeding", 0, 1, 0),
        (2020, "Broken Light", 0, 0, 1)]
    hit_rate = requests.get(f"{base}/zz/api/agency/{city}/contraband_hit_rate/",
                            timeout=30).json()
    assert [(row["year"], row["black"]) for row in hit_rate["contraband"]] == [(2019, 1)]
    officer = requests.get(f"{base}/zz/api/agency/{city}/stops/",
                           params={"officer": "B2"}, timeout=30).json()
    assert [(row["year"], row["hispanic"]) for row in officer] == [(2020, 1)]
    # What the state does not say it has, it does not serve.
    assert requests.get(f"{base}/zz/api/agency/{city}/use_of_force/",
                        timeout=30).status_code == 404
    assert requests.get(f"{base}/zz/api/stops/", params={"agency": city},
                        timeout=30).status_code == 404
