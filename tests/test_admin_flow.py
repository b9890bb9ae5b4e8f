"""Imports driven by the admin service on the real stack: admin, ingest and
stats as processes on the real broker and database, the gateway in process,
mails caught by a local SMTP server. Each import is followed through the
operator API to its final status."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import uuid
from datetime import date, datetime, timedelta

import pytest

from shared.states import STATES
from tests.conftest import ROOT
from tests.support.waiting import wait_until

FINAL = ("refreshed", "failed")


@pytest.fixture
def stack(operator, start_ingest_service, start_service):
    """The operator client with ingest and stats running behind admin."""
    start_ingest_service()
    start_service("services.stats")
    return operator


def named(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:6]}"


def register(stack, url: str, **changes) -> dict:
    body = {"state": "nc", "name": named("NC release"), "date_received": "2026-11-20",
            "url": url, "report_email_1": "ops@example.org",
            "report_email_2": "counsel@example.org"} | changes
    response = stack.call("POST", "/admin/api/datasets/", json=body)
    assert response.status_code == 201, response.text
    return response.json


def request_import(stack, dataset_id: int) -> int:
    response = stack.call("POST", f"/admin/api/datasets/{dataset_id}/import/")
    assert response.status_code == 202, response.text
    assert response.json["status"] == "queued"
    return response.json["import_id"]


def record_of(stack, import_id: int) -> dict:
    response = stack.call("GET", f"/admin/api/imports/{import_id}/")
    assert response.status_code == 200, response.text
    return response.json


def wait_final(stack, import_id: int, timeout: float = 120) -> dict:
    seen = []

    def final():
        seen[:] = [record_of(stack, import_id)]
        return seen[0]["status"] in FINAL and seen[0]

    try:
        return wait_until(final, timeout=timeout, interval=0.3)
    except AssertionError as error:
        raise AssertionError(f"import {import_id} did not end: {seen}") from error


def agency_names(stack) -> set[str]:
    return {agency["name"] for agency in stack.simulate_get("/nc/api/agency/").json}


def attachment(message, filename: str) -> list[dict]:
    (part,) = [part for part in message.iter_attachments() if part.get_filename() == filename]
    return list(csv.DictReader(io.StringIO(part.get_content())))


def two_agencies(recent: str, silent: str):
    """A stop last week for `recent`, and only a 2016 stop for `silent`."""
    last_week = date.today() - timedelta(days=7)

    def write(writer):
        writer.stop(1, recent, f"{last_week} 10:00:00", officer_id="R1")
        writer.person(1, 1, "D", race="B")
        writer.stop(2, recent, f"{last_week} 11:00:00", officer_id="R1")
        writer.person(2, 2, "D", race="W")
        writer.stop(3, silent, "2016-02-01 10:00:00")
        writer.person(3, 3, "D")
    return write


def test_an_import_goes_live_and_is_reported(stack, release, smtp, db):
    recent, silent = named("Rowan Police Department"), named("Sable County Sheriff")
    dataset = register(stack, release(two_agencies(recent, silent)).as_uri())
    import_id = request_import(stack, dataset["id"])

    record = wait_final(stack, import_id)

    assert record["status"] == "refreshed", record
    assert record["dataset_id"] == dataset["id"] and record["dataset"] == dataset["name"]
    assert record["counts"]["stops"] == 3 and record["rejected_rows"] == 0
    assert record["error"] is None and record["phase"] == "refreshed"
    assert record["started_at"] <= record["finished_at"]
    assert {agency["name"] for agency in record["new_agencies"]} == {recent, silent}
    assert agency_names(stack) == {recent, silent}

    to = {"ops@example.org", "counsel@example.org"}
    live = smtp.wait_for(lambda m: m["Subject"].endswith(f'"{dataset["name"]}" is live'))
    assert set(live["X-Envelope-To"].split(", ")) == to
    assert "3" in live.get_content() and "Stops" in live.get_content().title()
    found = smtp.wait_for(lambda m: "new agencies" in m["Subject"])
    assert {row["name"] for row in attachment(found, "new_agencies.csv")} == {recent, silent}
    compliance = smtp.wait_for(lambda m: "compliance report" in m["Subject"])
    # Only the agency silent for 90 days is listed.
    assert [(row["name"], row["last_stop_date"])
            for row in attachment(compliance, "compliance_report.csv")] == [
        (silent, "2016-02-01")]
    assert db("SELECT count(*) FROM admin.mails WHERE sent_at IS NULL")[0][0] == 0


def test_a_compliance_report_with_every_agency_current_says_so(stack, release, smtp):
    recent = named("Laurel Police Department")
    last_week = date.today() - timedelta(days=7)

    def write(writer):
        writer.stop(1, recent, f"{last_week} 10:00:00")
        writer.person(1, 1, "D")

    import_id = request_import(stack, register(stack, release(write).as_uri())["id"])
    assert wait_final(stack, import_id)["status"] == "refreshed"
    compliance = smtp.wait_for(lambda m: "compliance report" in m["Subject"])
    assert not list(compliance.iter_attachments())
    assert "All agencies reported" in compliance.get_content()


def test_a_broken_release_fails_and_the_served_data_stays(stack, release, smtp, tmp_path):
    good, silent = named("Willow Police Department"), named("Yew County Sheriff")
    first = request_import(stack, register(stack, release(two_agencies(good, silent))
                                           .as_uri())["id"])
    assert wait_final(stack, first)["status"] == "refreshed"
    served = stack.simulate_get("/nc/api/facts/").json

    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"this is not a zip archive")
    dataset = register(stack, broken.as_uri(), report_email_2=None)
    record = wait_final(stack, request_import(stack, dataset["id"]))

    assert record["status"] == "failed"
    assert "zip" in record["error"].lower() and record["finished_at"] is not None
    assert record["phase"]
    failure = smtp.wait_for(lambda m: m["Subject"].endswith(f'"{dataset["name"]}" failed'))
    assert record["error"] in failure.get_content()
    assert failure["X-Envelope-To"] == "ops@example.org"
    assert stack.simulate_get("/nc/api/facts/").json == served
    assert agency_names(stack) == {good, silent}


def test_two_imports_of_one_state_run_one_after_the_other(stack, release, db):
    names = [named("Alpha Police Department"), named("Beta Police Department")]

    def release_for(name: str):
        def write(writer):
            for stop_id in range(1, 301):
                writer.stop(stop_id, name, "2016-05-05 10:00:00")
                writer.person(stop_id, stop_id, "D")
        return release(write).as_uri()

    first, second = (register(stack, release_for(name)) for name in names)
    ids = [request_import(stack, first["id"]), request_import(stack, second["id"])]
    # The second waits for its turn without being sent to ingest.
    waiting = db("SELECT dispatched_at FROM admin.imports WHERE id = :id", id=ids[1])
    assert waiting[0].dispatched_at is None or record_of(stack, ids[0])["status"] in FINAL

    records = [wait_final(stack, import_id) for import_id in ids]

    assert [record["status"] for record in records] == ["refreshed", "refreshed"]
    runs = {row.import_id: row for row in db(
        "SELECT import_id, started_at, finished_at FROM ingest.import_runs "
        "WHERE import_id IN (:a, :b)", a=str(ids[0]), b=str(ids[1]))}
    assert runs[str(ids[1])].started_at >= runs[str(ids[0])].finished_at
    (dispatched,) = db("SELECT dispatched_at FROM admin.imports WHERE id = :id", id=ids[1])
    assert dispatched.dispatched_at.isoformat() >= records[0]["finished_at"]
    assert agency_names(stack) == {names[1]}


def test_an_import_survives_an_admin_restart(stack, release, start_service, start_admin,
                                             db):
    name = named("Hazel Police Department")

    def write(writer):
        for stop_id in range(1, 2001):
            writer.stop(stop_id, name, "2016-05-05 10:00:00")
            writer.person(stop_id, stop_id, "D")

    import_id = request_import(stack, register(stack, release(write).as_uri())["id"])
    start_service.stop_all("services.admin")
    # While admin is down the import runs to its end and stats refreshes it.
    wait_until(lambda: db("SELECT 1 FROM stats.generations g JOIN ingest.import_runs r "
                          "ON r.state = g.state WHERE r.import_id = :id AND r.status = "
                          "'loaded' AND g.data_version >= r.data_version", id=str(import_id)),
               timeout=120)
    (status,) = db("SELECT status FROM admin.imports WHERE id = :id", id=import_id)
    assert status.status in ("queued", "running")

    start_admin()
    record = wait_final(stack, import_id)
    assert record["status"] == "refreshed"
    assert record["counts"]["stops"] == 2000


def test_an_agency_mapping_renames_served_agencies_at_once(stack, release):
    raw, other = named("ROWAN PD"), named("Sable Sheriff")
    import_id = request_import(stack, register(stack, release(two_agencies(raw, other))
                                               .as_uri())["id"])
    assert wait_final(stack, import_id)["status"] == "refreshed"

    mapping = f"code,name,geoid\n{raw},Rowan Police Department,1600000US3757500\n"
    response = stack.call("PUT", "/admin/api/agencies/nc/mapping/", body=mapping)
    assert response.status_code == 200, response.text

    wait_until(lambda: agency_names(stack) == {"Rowan Police Department", other}, timeout=60)
    top = stack.simulate_get("/nc/api/facts/").json["top_agencies"]
    assert top[0]["name"] == "Rowan Police Department"


def test_the_nightly_nc_import(stack, release, ftp_server, admin_config, start_ingest_service,
                               start_service, smtp, db):
    start_service.stop_all("services.ingest")
    start_ingest_service(NC_FTP_HOST=ftp_server.address, NC_FTP_USER="nc-user",
                         NC_FTP_PASSWORD="nc-secret")
    agency = named("Cedar Police Department")
    (ftp_server.root / "STOPS_Extract.zip").write_bytes(
        release(two_agencies(agency, named("Dogwood Sheriff"))).read_bytes())
    env = admin_config.as_environ() | {
        "NC_AUTO_IMPORT_MONITORS": "night@example.org,day@example.org"}

    def nightly() -> dict:
        done = subprocess.run([sys.executable, "-m", "services.admin.nightly"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        (dataset,) = [dataset for dataset in stack.call("GET", "/admin/api/datasets/").json
                      if dataset["name"] == "Automated NC import"]
        return dataset

    dataset = nightly()
    yesterday = datetime.now(STATES["nc"].zone).date() - timedelta(days=1)
    assert dataset["url"] == "ftp://nc.us/"
    assert dataset["date_received"] == yesterday.isoformat()
    assert [dataset["report_email_1"], dataset["report_email_2"]] == [
        "night@example.org", "day@example.org"]
    (first,) = [record for record in stack.call("GET", "/admin/api/imports/").json
                if record["dataset_id"] == dataset["id"]]
    assert wait_final(stack, first["id"])["status"] == "refreshed"
    assert agency in agency_names(stack)
    live = smtp.wait_for(lambda m: '"Automated NC import" is live' in m["Subject"])
    assert set(live["X-Envelope-To"].split(", ")) == {"night@example.org", "day@example.org"}

    # The next night replaces the dataset; the earlier import keeps its record.
    replaced = nightly()
    assert replaced["id"] != dataset["id"]
    assert record_of(stack, first["id"])["dataset_id"] is None
    assert record_of(stack, first["id"])["status"] == "refreshed"
    assert len(db("SELECT id FROM admin.datasets WHERE name = 'Automated NC import'")) == 1


def test_a_request_made_before_ingest_ever_ran_waits_for_it(operator, start_ingest_service,
                                                           start_service, admin_config,
                                                           release):
    from kombu import Connection

    from shared.nameko_support import import_queue

    queue = import_queue(admin_config, "nc")
    with Connection(admin_config.amqp_uri) as conn:
        queue.bind(conn.default_channel).delete()  # as on a broker ingest never used

    name = named("Elm Police Department")
    dataset = register(operator, release(two_agencies(name, named("Fir Sheriff"))).as_uri())
    import_id = request_import(operator, dataset["id"])
    start_service("services.stats")
    start_ingest_service()

    assert wait_final(operator, import_id)["status"] == "refreshed"
    assert name in agency_names(operator)
