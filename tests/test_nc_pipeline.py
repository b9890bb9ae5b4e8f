"""The nc import pipeline against the real database: what a good release
leaves in the live schema, and what each kind of bad input leaves (nothing
changed, a message a person can act on)."""

from __future__ import annotations

import csv
import re
import threading
import uuid
import zipfile
from datetime import UTC, datetime

import pytest

from services.ingest.nc.synthetic import write_simple_stops
from services.ingest.pipeline import REJECTS_FILE, run_import
from tests.support.releases import ALDER, BIRCHWOOD, new_id, request, small_release


def outbox_events(db, import_id: str) -> list:
    return db("SELECT event_type, payload FROM ingest.outbox "
              "WHERE payload->>'import_id' = :id ORDER BY id", id=import_id)


def staging_schemas(db) -> list:
    return db("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'nc\\_staging\\_%'")


def live_snapshot(db) -> tuple:
    return (db("SELECT count(*), coalesce(sum(stop_id), 0) FROM nc.stop")[0],
            db("SELECT count(*) FROM nc.person")[0],
            db("SELECT id, name FROM nc.agency ORDER BY id"))


def test_a_release_is_loaded_with_exact_counts_and_local_times(config, release, db):
    job = request(release(small_release).as_uri())
    outcome = run_import(job, config)

    assert outcome["event"] == "dataset_loaded", outcome
    payload = outcome["payload"]
    assert payload["counts"] == {"stops": 4, "persons": 5, "searches": 1, "contraband": 1,
                                 "search_bases": 1}
    assert payload["dropped"] == {"stops before 2002": 1, "persons of dropped stops": 1,
                                  "searches of dropped stops": 1,
                                  "contraband of dropped stops": 1,
                                  "search bases of dropped stops": 1}
    assert payload["rejected_rows"] == 0
    assert db("SELECT stop_id FROM nc.stop ORDER BY stop_id") == [(1,), (2,), (3,), (4,)]
    # 23:59 on 31 December in Raleigh is already the next year in UTC.
    (stored,) = db("SELECT date FROM nc.stop WHERE stop_id = 2")[0]
    assert stored.astimezone(UTC) == datetime(2016, 1, 1, 4, 59, tzinfo=UTC)
    assert db("SELECT officer_id, purpose FROM nc.stop WHERE stop_id = 1") == [("A1", 1)]
    assert db("SELECT type, race, ethnicity FROM nc.person WHERE person_id = 12") == [
        ("P", "B", "H")]
    assert db("SELECT ounces, money, pounds FROM nc.contraband") == [(1.5, 200, None)]
    [(event_type, event_payload)] = outbox_events(db, job["import_id"])
    assert event_type == "dataset_loaded"
    assert event_payload["data_version"] == payload["data_version"]
    assert staging_schemas(db) == []


def test_keys_and_foreign_keys_exist_on_the_live_tables(config, release, db):
    run_import(request(release(small_release).as_uri()), config)
    constraints = db("SELECT conrelid::regclass::text, contype FROM pg_constraint "
                     "WHERE connamespace = 'nc'::regnamespace")
    foreign = sorted(table for table, kind in constraints if kind == "f")
    primary = sorted(table for table, kind in constraints if kind == "p")
    assert primary == ["nc.agency", "nc.contraband", "nc.person", "nc.search",
                       "nc.search_basis", "nc.stop"]
    assert foreign == ["nc.contraband"] * 3 + ["nc.person"] + ["nc.search"] * 2 + [
        "nc.search_basis"] * 3 + ["nc.stop"]


def test_the_reader_role_reads_the_live_schema_and_cannot_write(config, release, engine):
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    run_import(request(release(small_release).as_uri()), config)
    with engine.connect() as conn:
        conn.execute(text("SET ROLE odp_reader"))
        assert conn.execute(text("SELECT count(*) FROM nc.stop")).scalar() == 4
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("DELETE FROM nc.stop"))
        conn.rollback()


def test_agency_ids_stay_stable_and_new_agencies_are_reported(config, release, db):
    run_import(request(release(small_release).as_uri()), config)
    ids = dict(db("SELECT name, id FROM nc.agency"))
    newcomer = f"Newcomer Police Department {uuid.uuid4().hex[:6]}"
    highest = db("SELECT max(id) FROM ingest.agency_ids WHERE state = 'nc'")[0][0]

    def second_release(writer):
        writer.stop(1, newcomer, "2016-02-01 10:00:00")
        writer.stop(2, BIRCHWOOD, "2016-02-01 11:00:00")
        writer.person(1, 1)
        writer.person(2, 2)

    second = run_import(request(release(second_release).as_uri()), config)["payload"]
    after = dict(db("SELECT name, id FROM nc.agency"))
    assert after[BIRCHWOOD] == ids[BIRCHWOOD]
    assert ALDER not in after
    assert after[newcomer] == highest + 1
    assert second["new_agencies"] == [{"id": highest + 1, "name": newcomer}]

    third = run_import(request(release(small_release).as_uri()), config)["payload"]
    assert dict(db("SELECT name, id FROM nc.agency"))[ALDER] == ids[ALDER]
    assert third["new_agencies"] == []


def test_a_handful_of_malformed_lines_are_rejected_and_the_import_succeeds(
        config, release, db):
    def mostly_good(writer):
        write_simple_stops(writer, 600)
        writer.raw("Stop.txt", b"9001\tshort line\r\n")
        writer.stop(9002, ALDER, "2015-02-30 10:00:00")
        writer.person(9003, 9002)  # its stop was rejected

    job = request(release(mostly_good).as_uri())
    outcome = run_import(job, config)

    assert outcome["event"] == "dataset_loaded", outcome
    payload = outcome["payload"]
    assert payload["rejected_rows"] == 3
    assert payload["counts"]["stops"] == 600
    with open(config.data_dir / "nc" / job["import_id"] / REJECTS_FILE) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "line", "reason", "content"]
    assert rows[1] == ["Stop.txt", "601", "expected 15 tab-separated columns, found 2",
                       "9001\tshort line"]
    assert rows[2][:2] == ["Stop.txt", "602"]
    assert rows[2][2].startswith("StopDate '2015-02-30 10:00:00' is not a date")
    assert rows[3][:3] == ["PERSON.txt", "601", "its stop 9002 was rejected"]


def test_the_stop_id_range_limits_stops_and_their_rows(config, release, db):
    outcome = run_import(request(release(small_release).as_uri(), min_stop_id=2,
                                 max_stop_id=3), config)
    assert outcome["payload"]["counts"]["stops"] == 2
    assert db("SELECT stop_id FROM nc.stop ORDER BY 1") == [(2,), (3,)]
    assert db("SELECT person_id FROM nc.person ORDER BY 1") == [(21,), (31,)]
    assert db("SELECT count(*) FROM nc.search") == [(0,)]


def test_an_existing_destination_folder_is_reused_without_downloading(
        config, release, db, tmp_path):
    folder = tmp_path / "already-here"
    with zipfile.ZipFile(release(small_release)) as archive:
        archive.extractall(folder)
    job = request("http://127.0.0.1:9/unreachable.zip", destination=str(folder))
    outcome = run_import(job, config)
    assert outcome["event"] == "dataset_loaded", outcome
    assert outcome["payload"]["counts"]["stops"] == 4


def test_the_state_ftp_server_behind_nc_us_is_used(config, release, ftp_server, db):
    (ftp_server.root / "STOPS_Extract.zip").write_bytes(release(small_release).read_bytes())
    config = config.with_changes(nc_ftp_host=ftp_server.address, nc_ftp_user="nc-user",
                                 nc_ftp_password="nc-secret")
    outcome = run_import(request("ftp://nc.us/"), config)
    assert outcome["event"] == "dataset_loaded", outcome
    assert db("SELECT count(*) FROM nc.stop") == [(4,)]


def test_http_releases_are_downloaded(config, release, file_server, db):
    url = file_server.add("/nc/STOPS_Extract.zip", release(small_release))
    outcome = run_import(request(url), config)
    assert outcome["event"] == "dataset_loaded", outcome
    assert file_server.requests == ["/nc/STOPS_Extract.zip"]


def test_an_import_that_already_ended_is_not_loaded_again(config, release, db):
    job = request(release(small_release).as_uri())
    first = run_import(job, config)
    again = run_import(job, config)
    assert again == {**first, "replayed": True}
    assert len(outbox_events(db, job["import_id"])) == 1
    assert db("SELECT attempts, status FROM ingest.import_runs WHERE import_id = :id",
              id=job["import_id"]) == [(1, "loaded")]


def test_imports_of_one_state_run_one_after_the_other(config, release, db):
    jobs = [request(release(small_release).as_uri()) for _ in range(2)]
    threads = [threading.Thread(target=run_import, args=(job, config)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    runs = db("SELECT started_at, finished_at, status FROM ingest.import_runs "
              "WHERE import_id IN (:a, :b) ORDER BY started_at",
              a=jobs[0]["import_id"], b=jobs[1]["import_id"])
    assert [run.status for run in runs] == ["loaded", "loaded"]
    assert runs[0].finished_at <= runs[1].started_at


def test_staging_schemas_left_by_a_crashed_import_are_dropped(config, release, db, engine):
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA nc_staging_deadbeef"))
    run_import(request(release(small_release).as_uri()), config)
    assert staging_schemas(db) == []


# -- bad input: the live data stays, the staging schema goes, the message helps --

def _zip_with(tmp_path, entries: dict[str, bytes]):
    path = tmp_path / f"{uuid.uuid4().hex}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _wrong_columns(writer):
    for stop_id in range(1, 200):
        writer.raw("Stop.txt", f"{stop_id}\t{ALDER}\t2015-01-01 10:00:00\r\n".encode())
    writer.stop(500, ALDER, "2015-01-01 10:00:00")


def _too_many_rejects(writer):
    write_simple_stops(writer, 100)
    for stop_id in range(1000, 1010):
        writer.stop(stop_id, ALDER, "2015-13-01 10:00:00")


BAD_INPUT = {
    "unreachable": (lambda ctx: "http://127.0.0.1:9/STOPS_Extract.zip",
                    "download", r"could not download .* could not be reached"),
    "http error": (lambda ctx: ctx["server"].add("/gone.zip", b"nope", status=404),
                   "download", r"answered HTTP 404"),
    "corrupt zip": (lambda ctx: _file(ctx, b"PK\x03\x04 this is not a zip" * 10),
                    "unpack", r"is not a readable zip file"),
    "missing file": (lambda ctx: _zip_with(ctx["tmp"], {"Stop.txt": b""}).as_uri(),
                     "unpack", r"has no PERSON.txt, Search.txt"),
    "path escape": (lambda ctx: _zip_with(ctx["tmp"], {"../../evil.txt": b"x"}).as_uri(),
                    "unpack", r"'../../evil.txt' points outside the destination"),
    "size cap": (lambda ctx: ctx["release"](small_release).as_uri(),
                 "unpack", r"unpack to 2,608 bytes, over the limit of 1,000 bytes"),
    "wrong columns": (lambda ctx: ctx["release"](_wrong_columns).as_uri(),
                      "load Stop.txt", r"Stop.txt: 199 of 200 lines rejected \(99.5%\)"),
    "too many rejects": (lambda ctx: ctx["release"](_too_many_rejects).as_uri(),
                         "load Stop.txt", r"10 of 110 lines rejected .* over the limit"),
}


def _file(ctx, data: bytes) -> str:
    path = ctx["tmp"] / "STOPS_Extract.zip"
    path.write_bytes(data)
    return path.as_uri()


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_fails_clearly_and_leaves_the_live_data_alone(
        case, config, release, db, file_server, tmp_path):
    baseline = run_import(request(release(small_release).as_uri()), config)
    assert baseline["event"] == "dataset_loaded"
    before = live_snapshot(db)

    make_url, phase, message = BAD_INPUT[case]
    url = make_url({"server": file_server, "tmp": tmp_path, "release": release})
    if case == "size cap":
        config = config.with_changes(ingest_max_unzipped_bytes=1000)
    job = request(url)
    outcome = run_import(job, config)

    assert outcome["event"] == "dataset_failed"
    payload = outcome["payload"]
    assert payload["phase"] == phase
    assert payload["error"]
    assert re.search(message, payload["error"]), payload["error"]
    assert live_snapshot(db) == before
    assert staging_schemas(db) == []
    assert db("SELECT status, error FROM ingest.import_runs WHERE import_id = :id",
              id=job["import_id"]) == [("failed", payload["error"])]
    [(event_type, event_payload)] = outbox_events(db, job["import_id"])
    assert (event_type, event_payload["error"]) == ("dataset_failed", payload["error"])


def test_a_release_of_another_state_fails_clearly(config, release, db):
    job = {"import_id": new_id(), "state": "md", "url": release(small_release).as_uri()}
    outcome = run_import(job, config)
    assert outcome["event"] == "dataset_failed"
    assert "has no workbook" in outcome["payload"]["error"]
    assert "a Maryland release needs workbook" in outcome["payload"]["error"]
    assert db("SELECT status FROM ingest.import_runs WHERE import_id = :id",
              id=job["import_id"]) == [("failed",)]


def test_a_lost_database_connection_is_named_as_such():
    """An outage, not an internal error: the message says what happened, with
    the deepest cause, and what to do."""
    import psycopg2

    from services.ingest.errors import database_lost

    outer = psycopg2.OperationalError("invalid socket")
    outer.__context__ = psycopg2.OperationalError(
        "terminating connection due to administrator command\nCONTEXT: COPY stop, line 1")
    wrapped = RuntimeError("the copy thread failed")
    wrapped.__cause__ = outer
    said = database_lost(wrapped)
    assert said == ("the database connection was lost (terminating connection due to "
                    "administrator command); the data being served did not change; "
                    "request the import again once PostgreSQL is back")
    assert database_lost(ValueError("a bad date")) is None


def test_a_timeout_or_deadlock_is_not_an_outage(engine):
    """Statement timeouts, lock timeouts and deadlocks are OperationalErrors
    too, but the server is there: they are counted as failures, not waited
    out as an outage (shared.retrying) nor reported as a lost connection."""
    from sqlalchemy.exc import OperationalError as WrappedError

    from shared.db import connection_lost

    with engine.connect() as conn:
        with pytest.raises(WrappedError) as timed_out:
            conn.exec_driver_sql("SET LOCAL statement_timeout = 10; SELECT pg_sleep(1)")
    assert timed_out.value.orig.pgcode == "57014"
    assert connection_lost(timed_out.value) is None
    with engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(WrappedError) as terminated:
            conn.exec_driver_sql("SELECT 1")
    assert connection_lost(terminated.value) is not None
