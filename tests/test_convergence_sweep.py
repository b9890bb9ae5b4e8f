"""Convergence without events: admin's sweep (services/admin/sweep.py) moves
an import on from what ingest and stats recorded when their events were
lost, and ingest ends a `running` run whose worker is gone
(services/ingest/orphans.py), on the real database."""

from __future__ import annotations

import json
import uuid

import psycopg2
import pytest
from sqlalchemy import select, text

from services.admin import imports as admin_imports
from services.admin.sweep import sweep
from services.ingest.orphans import fail_orphaned_runs
from services.ingest.pipeline import run_import
from services.stats.refresh import refresh
from shared.db import advisory_key, psycopg2_dsn
from shared.tables import imports
from tests.conftest import leave_nothing_behind
from tests.support.releases import ALDER, small_release


@pytest.fixture(autouse=True)
def ended_after(engine):
    """The imports a test leaves dispatched would hold up the next test's."""
    yield
    leave_nothing_behind(engine)


def dispatched(engine, url: str, ago: float = 0.0) -> int:
    """An nc import admin dispatched `ago` seconds back, whose events never came."""
    with engine.begin() as conn:
        return conn.execute(imports.insert().values(
            state="nc", url=url, dataset_name="NC sweep test", status="queued",
            dispatched_at=text(f"now() - interval '{ago} seconds'"),
        ).returning(imports.c.id)).scalar_one()


def status(engine, import_id: int):
    with engine.connect() as conn:
        return conn.execute(select(imports.c.status, imports.c.error, imports.c.data_version)
                            .where(imports.c.id == import_id)).one()


def swept(engine, config) -> None:
    with engine.begin() as conn:
        sweep(conn, config, "nc")


def requests_of(db, import_id: int) -> int:
    return db("SELECT count(*) FROM admin.outbox WHERE event_type = 'import_requested' "
              "AND payload->>'import_id' = :id", id=str(import_id))[0][0]


def test_an_import_whose_events_were_lost_ends_refreshed(config, engine, release):
    url = release(small_release).as_uri()
    import_id = dispatched(engine, url)
    outcome = run_import({"import_id": str(import_id), "state": "nc", "url": url}, config)
    assert outcome["event"] == "dataset_loaded"
    swept(engine, config)
    assert status(engine, import_id)[0] == "loaded"

    refresh(engine, "nc", outcome["payload"]["data_version"])
    swept(engine, config)
    assert status(engine, import_id) == ("refreshed", None,
                                         outcome["payload"]["data_version"])


def test_a_failure_whose_event_was_lost_is_recorded_and_the_next_import_goes(
        config, engine, db, tmp_path):
    missing = (tmp_path / "nowhere.zip").as_uri()
    import_id = dispatched(engine, missing)
    with engine.begin() as conn:
        waiting = conn.execute(imports.insert().values(
            state="nc", url=missing, dataset_name="NC next", status="queued",
        ).returning(imports.c.id)).scalar_one()
    outcome = run_import({"import_id": str(import_id), "state": "nc", "url": missing}, config)
    assert outcome["event"] == "dataset_failed"

    swept(engine, config)
    state, error, _ = status(engine, import_id)
    assert state == "failed" and error == outcome["payload"]["error"]
    assert requests_of(db, waiting) == 1


def test_a_request_no_run_took_up_is_sent_again_after_the_wait(config, engine, db):
    fresh = dispatched(engine, "ftp://nc.example/fresh.zip")
    lost = dispatched(engine, "ftp://nc.example/lost.zip",
                      ago=config.import_redispatch_after + 5)
    swept(engine, config)
    assert requests_of(db, fresh) == 0
    assert requests_of(db, lost) == 1
    assert status(engine, lost)[0] == "queued"
    # Stamped again: not sent once more on the next sweep.
    swept(engine, config)
    assert requests_of(db, lost) == 1


def test_a_running_run_without_its_worker_is_failed_and_never_loaded_later(
        config, engine, db, release):
    url = release(small_release).as_uri()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ingest.import_runs (import_id, state, url, status, "
                          "attempts) VALUES ('orphan-1', 'nc', :url, 'running', 1)"),
                     {"url": url})
    # A worker at work holds the state's lock: its run is not touched.
    holder = psycopg2.connect(psycopg2_dsn(config.database_url))
    holder.autocommit = True
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (advisory_key("ingest:nc"),))
    try:
        assert fail_orphaned_runs(engine, config, "nc") == []
    finally:
        holder.close()

    # (with any run an earlier test left `running`)
    assert "orphan-1" in fail_orphaned_runs(engine, config, "nc")
    (run,) = db("SELECT status, error FROM ingest.import_runs WHERE import_id = 'orphan-1'")
    assert run.status == "failed" and "worker stopped before the import ended" in run.error
    assert db("SELECT count(*) FROM ingest.outbox WHERE event_type = 'dataset_failed' "
              "AND payload->>'import_id' = 'orphan-1'")[0][0] == 1
    # The request redelivered afterwards finds the import ended: nothing loads.
    again = run_import({"import_id": "orphan-1", "state": "nc", "url": url}, config)
    assert again["event"] == "dataset_failed" and again.get("replayed")


def test_the_sweep_leaves_an_import_under_way_alone(config, engine, release):
    """A run still `running` (its worker at work) and a request sent a moment
    ago are left as they are."""
    url = release(small_release).as_uri()
    import_id = dispatched(engine, url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ingest.import_runs (import_id, state, url, status, "
                          "attempts) VALUES (:id, 'nc', :url, 'running', 1)"),
                     {"id": str(import_id), "url": url})
        admin_imports.progressed(conn, import_id, "load Stop.txt", 10, 100)
    swept(engine, config)
    assert status(engine, import_id)[0] == "running"
    with engine.begin() as conn:
        conn.execute(text("UPDATE ingest.import_runs SET status = 'failed' "
                          "WHERE import_id = :id"), {"id": str(import_id)})


def test_an_import_ended_by_another_process_never_goes_live(config, engine, db, release):
    """The orphan timer (or a service whose worker died) ended the run as
    failed while a second copy of the request was loading it: the swap finds
    the run ended and does not make the release live."""
    live = run_import({"import_id": f"live-{uuid.uuid4().hex[:8]}", "state": "nc",
                       "url": release(small_release).as_uri()}, config)
    assert live["event"] == "dataset_loaded"
    before = db("SELECT count(*) FROM nc.stop")[0][0]

    def one_stop(writer):
        writer.stop(1, ALDER, "2016-01-01 10:00:00")
        writer.person(1, 1)

    url = release(one_stop).as_uri()
    import_id = f"ended-{uuid.uuid4().hex[:8]}"

    def report(phase, done, total):
        if phase == "swap" and done == 0:
            with engine.begin() as conn:
                conn.execute(text("UPDATE ingest.import_runs SET status = 'failed', "
                                  "result = :result WHERE import_id = :id"),
                             {"id": import_id, "result": json.dumps(
                                 {"event": "dataset_failed", "payload": {"ended": "elsewhere"}})})

    outcome = run_import({"import_id": import_id, "state": "nc", "url": url}, config, report)
    assert outcome == {"event": "dataset_failed", "payload": {"ended": "elsewhere"},
                       "replayed": True}
    assert db("SELECT count(*) FROM nc.stop")[0][0] == before != 1
    assert db("SELECT count(*) FROM ingest.outbox WHERE payload->>'import_id' = :id",
              id=import_id)[0][0] == 0
