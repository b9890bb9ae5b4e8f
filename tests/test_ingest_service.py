"""The ingest_nc service as `make run` runs it, driven through the real broker:
requests arrive as `import_requested` events, outcomes leave as events."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil
import pytest

from services.admin.imports import admin_publisher
from services.ingest.nc.synthetic import generate_release, zip_release
from shared.events import ADMIN_SOURCE, IMPORT_HANDLER, IMPORT_REQUESTED
from shared.nameko_support import handler_queue, import_queue
from shared.states import STATES
from tests.support.releases import new_id, request_import, small_release
from tests.support.waiting import wait_until


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
    failed = events.wait_for("dataset_failed", other)

    # ingest_md took the md request (an nc release is no Maryland workbook);
    # ingest_nc left it alone.
    assert "has no workbook" in failed["error"]
    assert {source for source, kind, payload in events.events
            if payload.get("import_id") == other} == {"ingest_md"}
    assert db("SELECT state, attempts FROM ingest.import_runs WHERE import_id = :id",
              id=other) == [("md", 1)]


def waiting_in(config, state: str) -> int:
    """How many messages wait in ingest_<state>'s queue of import requests
    (a passive declare: the queue must exist)."""
    from kombu import Connection

    with Connection(config.amqp_uri) as conn:
        return conn.default_channel.queue_declare(import_queue(config, state).name,
                                                  passive=True).message_count


def test_an_import_request_fills_only_its_states_queue(
        config, release, events, start_ingest_service):
    # The queues as the ingest services declare and bind them, left without
    # consumers: what a request reaches stays there to be counted.
    start_ingest_service().stop()
    assert {state: waiting_in(config, state) for state in STATES} == {
        "nc": 0, "md": 0, "il": 0}

    # Published without declaring anything: the services' own bindings route it.
    md_request = request_import(config, release(small_release).as_uri(), state="md")
    assert {state: waiting_in(config, state) for state in STATES} == {
        "nc": 0, "md": 1, "il": 0}
    # As admin publishes (its outbox relay declares the state's queue first).
    il_request = new_id("svc")
    admin_publisher(config)(ADMIN_SOURCE, IMPORT_REQUESTED, {
        "import_id": il_request, "state": "il", "url": release(small_release).as_uri()})
    assert {state: waiting_in(config, state) for state in STATES} == {
        "nc": 0, "md": 1, "il": 1}

    # Each waiting request is taken by its own state's service.
    start_ingest_service()
    for import_id, service in ((md_request, "ingest_md"), (il_request, "ingest_il")):
        events.wait_for("dataset_failed", import_id)  # an nc release, of no other state
        assert {source for source, kind, payload in events.events
                if payload.get("import_id") == import_id} == {service}
    wait_until(lambda: not any(waiting_in(config, state) for state in STATES))


def test_a_request_waiting_in_a_queue_bound_before_routing_by_state_is_loaded(
        config, release, events, start_ingest_service, db):
    """An upgrade: the queues were bound with plain `import_requested`, which
    admin published every request with, so an nc request waits in all three.
    The new services keep the queues' names: nc's loads it, the others drop
    their copies."""
    from kombu import Connection
    from nameko.amqp.publish import Publisher
    from nameko.standalone.events import get_event_exchange

    with Connection(config.amqp_uri) as conn:
        for state in STATES.values():
            handler_queue(config, ADMIN_SOURCE, IMPORT_REQUESTED, state.ingest_service,
                          IMPORT_HANDLER)(conn.default_channel).declare()
    import_id = new_id("old")
    Publisher(config.amqp_uri, serializer="json").publish(
        {"import_id": import_id, "state": "nc", "url": release(small_release).as_uri()},
        exchange=get_event_exchange(ADMIN_SOURCE, config.nameko_config()),
        routing_key=IMPORT_REQUESTED)
    assert {state: waiting_in(config, state) for state in STATES} == {
        "nc": 1, "md": 1, "il": 1}

    start_ingest_service()
    loaded = events.wait_for("dataset_loaded", import_id)
    assert loaded["counts"]["stops"] == 4
    wait_until(lambda: not any(waiting_in(config, state) for state in STATES))
    assert {source for source, kind, payload in events.events
            if payload.get("import_id") == import_id} == {"ingest_nc"}
    assert db("SELECT state, attempts FROM ingest.import_runs WHERE import_id = :id",
              id=import_id) == [("nc", 1)]


def test_a_long_import_keeps_its_broker_connection_and_loads_once(
        config, events, start_ingest_service, file_server, larger_release, db, tmp_path):
    # ... and its heartbeat: an import in progress never makes a probe fail.
    archive, summary = larger_release
    # At least 20 s of download, then the parse: four times a 5 s heartbeat.
    # (Heartbeats go out about once per interval, checked once a second, so a
    # shorter interval drops healthy connections on a loaded machine.)
    chunks = archive.stat().st_size / (64 * 1024)
    url = file_server.add("/slow/STOPS_Extract.zip", archive, delay=20 / chunks)
    heartbeat = tmp_path / "heartbeat"
    service = start_ingest_service(AMQP_HEARTBEAT="5", HEARTBEAT_FILE=str(heartbeat))
    started = time.monotonic()
    import_id = request_import(config, url)
    ages: list[float] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.wait(1):
            if heartbeat.exists():
                ages.append(time.time() - heartbeat.stat().st_mtime)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        loaded = events.wait_for("dataset_loaded", import_id, timeout=300)
    finally:
        watching.set()
        watcher.join()
    took = time.monotonic() - started
    time.sleep(3)  # a redelivered request would show up as a second load by now

    assert took > 20, f"the import took only {took:.1f}s; it must outlast the heartbeat"
    assert loaded["counts"]["stops"] + loaded["dropped"]["stops before 2002"] == summary.stops
    assert len(events.of("dataset_loaded", import_id)) == 1
    assert db("SELECT attempts, status FROM ingest.import_runs WHERE import_id = :id",
              id=import_id) == [(1, "loaded")]
    assert file_server.requests.count("/slow/STOPS_Extract.zip") == 1
    log = service.log()
    assert "Connection to broker lost" not in log
    assert log.count(f"import {import_id} requested") == 1
    # Touched every 5 s throughout: far inside the probes' 30 s.
    assert len(ages) > 15 and max(ages) < 12, ages


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


def test_a_request_that_arrives_while_the_database_is_down_is_not_lost(
        base_config, release, events, start_ingest_service):
    """The database the service points at does not exist yet: the import
    cannot run and its failure cannot be recorded, so the request goes back
    to the retry queue; once the database is there, the redelivered request
    loads."""
    from tests.conftest import TEST_DATABASE, create_database, drop_database, rename_database

    late_name, building_name = f"{TEST_DATABASE}_late", f"{TEST_DATABASE}_late_build"
    late = base_config.with_changes(database_url=f"postgresql:///{late_name}")
    building = base_config.with_changes(database_url=f"postgresql:///{building_name}")
    for name in (late_name, building_name):
        drop_database(name)
    service = start_ingest_service(DATABASE_URL=late.database_url)
    import_id = request_import(base_config, release(small_release).as_uri())
    wait_until(lambda: "not counted as a try" in service.log(), timeout=60)
    try:
        # Built under another name and renamed: the database appears whole.
        create_database(building)
        rename_database(building_name, late_name)
        loaded = events.wait_for("dataset_loaded", import_id, timeout=120)
        assert loaded["counts"]["stops"] == 4
        assert f"import {import_id} requested" in service.log()
        assert service.log().count(f"import {import_id} requested") >= 2
    finally:
        service.stop()
        for name in (late_name, building_name):
            drop_database(name)


def test_one_states_ingest_runs_alone_when_named(config, start_service):
    # One Deployment per state in k8s/: `python -m services.ingest md`.
    service = start_service("services.ingest", argv=[sys.executable, "-m", "services.ingest",
                                                     "md"])

    ready = [line for line in service.log().splitlines() if "services ready:" in line]
    assert ready and ready[0].endswith("services ready: ingest_md")


def test_an_unknown_state_is_refused_naming_the_known_ones(config):
    result = subprocess.run([sys.executable, "-m", "services.ingest", "nc", "xx"],
                            env=config.as_environ(), capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "unknown state(s) xx; known: nc, md, il" in result.stderr
