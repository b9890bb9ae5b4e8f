"""The ingest_nc service as `make run` runs it, driven through the real broker:
requests arrive as `import_requested` events, outcomes leave as events."""

from __future__ import annotations

import time
import uuid

import psutil
import pytest
from nameko.standalone.events import event_dispatcher

from services.ingest.nc.synthetic import generate_release, zip_release
from shared.events import ADMIN_SOURCE, IMPORT_REQUESTED
from tests.support.waiting import wait_until
from tests.test_nc_pipeline import small_release


def request_import(config, url: str, state: str = "nc") -> str:
    import_id = f"svc-{uuid.uuid4().hex[:10]}"
    dispatch = event_dispatcher(config.nameko_config())
    dispatch(ADMIN_SOURCE, IMPORT_REQUESTED,
             {"import_id": import_id, "state": state, "url": url})
    return import_id


@pytest.fixture(scope="module")
def larger_release(tmp_path_factory):
    """A release big enough that the import outlasts a short heartbeat many times over."""
    folder = tmp_path_factory.mktemp("larger")
    summary = generate_release(folder, 150_000, seed=3)
    return zip_release(folder, folder / "STOPS_Extract.zip"), summary


def test_an_import_request_ends_in_dataset_loaded_with_progress(
        config, release, events, start_ingest_service, db):
    start_ingest_service()
    import_id = request_import(config, release(small_release).as_uri())

    loaded = events.wait_for("dataset_loaded", import_id)
    assert loaded["counts"] == {"stops": 4, "persons": 5, "searches": 1, "contraband": 1,
                                "search_bases": 1}
    assert loaded["state"] == "nc"
    phases = [event["phase"] for event in events.of("import_progress", import_id)]
    ordered = list(dict.fromkeys(phases))
    assert ordered == ["unpack", "load Stop.txt", "load PERSON.txt", "load Search.txt",
                       "load Contraband.txt", "load SearchBasis.txt", "index", "swap"]
    assert db("SELECT count(*) FROM nc.stop") == [(4,)]
    assert events.of("dataset_failed", import_id) == []


def test_a_broken_release_ends_in_dataset_failed(
        config, events, start_ingest_service, file_server):
    start_ingest_service()
    import_id = request_import(config, file_server.add("/missing.zip", b"", status=404))
    failed = events.wait_for("dataset_failed", import_id)
    assert failed["phase"] == "download"
    assert "answered HTTP 404" in failed["error"]


def test_requests_for_another_state_are_left_to_that_state(
        config, release, events, start_ingest_service, db):
    start_ingest_service()
    other = request_import(config, release(small_release).as_uri(), state="md")
    marker = request_import(config, release(small_release).as_uri())
    events.wait_for("dataset_loaded", marker)
    assert db("SELECT count(*) FROM ingest.import_runs WHERE import_id = :id", id=other) == [
        (0,)]
    assert events.of("import_progress", other) == []


def test_a_long_import_keeps_its_broker_connection_and_loads_once(
        config, events, start_ingest_service, file_server, larger_release, db):
    archive, summary = larger_release
    # About 6 s of download at ~2 MB/s, then the parse: far past a 2 s heartbeat.
    url = file_server.add("/slow/STOPS_Extract.zip", archive, delay=0.03)
    service = start_ingest_service(AMQP_HEARTBEAT="2")
    started = time.monotonic()
    import_id = request_import(config, url)

    loaded = events.wait_for("dataset_loaded", import_id, timeout=300)
    took = time.monotonic() - started
    time.sleep(3)  # a redelivered request would show up as a second load by now

    assert took > 5, f"the import took only {took:.1f}s; it must outlast the heartbeat"
    assert loaded["counts"]["stops"] + loaded["dropped"]["stops before 2002"] == summary.stops
    assert len(events.of("dataset_loaded", import_id)) == 1
    assert db("SELECT attempts, status FROM ingest.import_runs WHERE import_id = :id",
              id=import_id) == [(1, "loaded")]
    assert file_server.requests.count("/slow/STOPS_Extract.zip") == 1
    log = service.log()
    assert "Connection to broker lost" not in log
    assert log.count(f"import {import_id} requested") == 1


def test_a_worker_that_dies_ends_in_dataset_failed(
        config, events, start_ingest_service, file_server, larger_release, db):
    archive, _ = larger_release
    url = file_server.add("/dies/STOPS_Extract.zip", archive, delay=0.05)
    service = start_ingest_service()
    import_id = request_import(config, url)
    events.wait_for("import_progress", import_id)

    workers = wait_until(lambda: [child for child in
                                  psutil.Process(service.process.pid).children(recursive=True)
                                  if "services.ingest.worker" in " ".join(child.cmdline())])
    for worker in workers:
        worker.kill()

    failed = events.wait_for("dataset_failed", import_id)
    assert failed["phase"] == "download"
    assert "stopped unexpectedly during download (exit code -9)" in failed["error"]
    assert db("SELECT status FROM ingest.import_runs WHERE import_id = :id",
              id=import_id) == [("failed",)]
