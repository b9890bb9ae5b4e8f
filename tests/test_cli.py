"""The `odp` command as an operator runs it: a separate process, configured
through its environment, against the real database and broker."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

from shared import outbox
from shared.nameko_support import publisher
from tests.support.releases import small_release

ROOT = Path(__file__).resolve().parent.parent
CLOSED_BROKER = "amqp://guest:guest@127.0.0.1:1/"
PHASES = ["unpack", "load Stop.txt", "load PERSON.txt", "load Search.txt",
          "load Contraband.txt", "load SearchBasis.txt", "index", "swap"]
# A progress line written for a log or a pipe: "phase: done of total".
PROGRESS_LINE = re.compile(r"^(?P<phase>[A-Za-z][\w. ]*): \S+(?: MB)? of \S+(?: MB)?$")


def odp(config, *args: str, **environ: str) -> subprocess.CompletedProcess:
    """Run `python -m odp ARGS` from the repository root with the config's settings."""
    return subprocess.run([sys.executable, "-m", "odp", *args], cwd=ROOT,
                          env=config.as_environ() | environ, capture_output=True,
                          text=True, timeout=300)


def new_id() -> str:
    return f"cli-test-{uuid.uuid4().hex[:10]}"


def published_at(db, import_id: str) -> list:
    return db("SELECT published_at FROM ingest.outbox WHERE payload->>'import_id' = :id",
              id=import_id)


def test_ingest_loads_a_release_reports_counts_and_publishes_its_events(
        config, release, events, db, tmp_path):
    import_id = new_id()
    dest = tmp_path / "dest"
    result = odp(config, "ingest", "nc", "--url", release(small_release).as_uri(),
                 "--dest", str(dest), "--import-id", import_id)

    assert result.returncode == 0, result.stderr
    assert (f"import {import_id} loaded: stops 4, persons 5, searches 1, contraband 1, "
            "search_bases 1") in result.stdout
    assert f"rejected lines: 0 (see {dest / 'rejects.csv'})" in result.stdout
    assert (dest / "rejects.csv").read_text().splitlines()[0] == "file,line,reason,content"
    assert (dest / "Stop.txt").is_file()
    assert db("SELECT count(*) FROM nc.stop") == [(4,)]
    loaded = events.wait_for("dataset_loaded", import_id, timeout=30)
    assert loaded["counts"]["stops"] == 4
    assert events.of("import_progress", import_id)
    [(published,)] = published_at(db, import_id)
    assert published is not None
    assert "not reachable" not in result.stderr


def test_a_failed_import_exits_1_and_names_the_phase_and_reason(config, events, db):
    import_id = new_id()
    result = odp(config, "ingest", "nc", "--url", "http://127.0.0.1:9/x.zip",
                 "--import-id", import_id)

    assert result.returncode == 1, result.stderr
    assert re.search(rf"^import {import_id} failed during download: .*could not be reached",
                     result.stderr, re.MULTILINE), result.stderr
    assert "loaded" not in result.stdout
    assert events.wait_for("dataset_failed", import_id, timeout=30)["phase"] == "download"
    assert db("SELECT status FROM ingest.import_runs WHERE import_id = :id",
              id=import_id) == [("failed",)]


def test_without_a_broker_the_import_loads_and_its_event_waits_in_the_outbox(
        config, release, events, db, engine):
    import_id = new_id()
    result = odp(config, "ingest", "nc", "--url", release(small_release).as_uri(),
                 "--import-id", import_id, AMQP_URI=CLOSED_BROKER)

    assert result.returncode == 0, result.stderr
    assert f"import {import_id} loaded: stops 4" in result.stdout
    assert f"the broker at {CLOSED_BROKER} is not reachable" in result.stderr
    assert "the outcome waits in the outbox" in result.stderr
    assert db("SELECT count(*) FROM nc.stop") == [(4,)]
    assert published_at(db, import_id) == [(None,)]
    assert events.of("import_progress", import_id) == []

    # Nothing is lost: the next relay (the ingest service's) publishes it.
    outbox.relay(engine, publisher(config))
    loaded = events.wait_for("dataset_loaded", import_id, timeout=30)
    assert loaded["counts"]["stops"] == 4
    [(published,)] = published_at(db, import_id)
    assert published is not None


def test_the_stop_id_range_limits_the_stops_loaded(config, release, db):
    import_id = new_id()
    result = odp(config, "ingest", "nc", "--url", release(small_release).as_uri(),
                 "--min-stop-id", "2", "--max-stop-id", "3", "--import-id", import_id)

    assert result.returncode == 0, result.stderr
    assert f"import {import_id} loaded: stops 2, persons 2," in result.stdout
    assert db("SELECT stop_id FROM nc.stop ORDER BY 1") == [(2,), (3,)]


def test_a_stop_id_range_for_another_state_is_refused_before_anything_starts(
        config, release, db):
    import_id = new_id()
    result = odp(config, "ingest", "md", "--url", release(small_release).as_uri(),
                 "--min-stop-id", "2", "--max-stop-id", "3", "--import-id", import_id)

    assert result.returncode == 2
    assert "--min-stop-id and --max-stop-id apply to nc only" in result.stderr
    assert result.stdout == ""
    assert db("SELECT count(*) FROM ingest.import_runs WHERE import_id = :id",
              id=import_id) == [(0,)]


def test_help_lists_the_commands_and_the_ingest_options(config):
    top = odp(config, "--help")
    assert top.returncode == 0, top.stderr
    for command in ("db", "ingest", "run"):
        assert re.search(rf"^\s+{command}\s", top.stdout, re.MULTILINE), top.stdout

    ingest = odp(config, "ingest", "--help")
    assert ingest.returncode == 0, ingest.stderr
    for option in ("--url", "--dest", "--min-stop-id", "--max-stop-id", "--import-id"):
        assert option in ingest.stdout
    assert "ftp://nc.us/" in ingest.stdout
    assert "{il,md,nc}" in ingest.stdout


def test_progress_off_a_terminal_is_a_line_per_phase_ending_with_the_time_taken(
        config, release):
    result = odp(config, "ingest", "nc", "--url", release(small_release).as_uri(),
                 "--import-id", new_id())

    assert result.returncode == 0, result.stderr
    # No redrawing in place when stderr is a pipe.
    assert "\r" not in result.stderr
    progress = [match["phase"] for line in result.stderr.splitlines()
                if (match := PROGRESS_LINE.match(line))]
    assert list(dict.fromkeys(progress)) == PHASES, result.stderr
    # At most a line per tenth of a phase, plus its first.
    assert all(progress.count(phase) <= 11 for phase in PHASES)
    assert any(line.startswith("load Stop.txt: ") for line in result.stderr.splitlines())
    assert re.search(r"done in \d+\.\ds$", result.stderr.rstrip()), result.stderr[-500:]


def test_db_setup_is_idempotent_and_reports_the_database(config, release, db):
    loaded = odp(config, "ingest", "nc", "--url", release(small_release).as_uri(),
                 "--import-id", new_id())
    assert loaded.returncode == 0, loaded.stderr
    before = db("SELECT count(*) FROM nc.stop")

    result = odp(config, "db", "setup")

    assert result.returncode == 0, result.stderr
    assert f"database ready: {config.database_url}" in result.stdout
    assert db("SELECT count(*) FROM nc.stop") == before == [(4,)]
    assert db("SELECT count(*) FROM alembic_version") == [(1,)]


def test_ingest_works_on_a_broker_where_the_service_never_ran(config, release, db):
    from kombu import Connection, Exchange

    with Connection(config.amqp_uri) as conn:
        Exchange("ingest_nc.events", type="topic", durable=True)(conn.channel()).delete()
    import_id = new_id()
    result = odp(config, "ingest", "nc", "--url", release(small_release).as_uri(),
                 "--import-id", import_id)
    assert result.returncode == 0, result.stderr
    assert published_at(db, import_id)[0][0] is not None


def test_many_new_agencies_are_one_line_and_a_file(config, release, db, tmp_path):
    # A real release brings hundreds of agencies the first time: their
    # names go to a file, the terminal gets their count and where it is.
    tag = uuid.uuid4().hex[:6]
    names = [f"Town {tag} {number:03d} Police Department" for number in range(120)]

    def many_agencies(writer):
        for number, name in enumerate(names, start=1):
            writer.stop(number, name, "2015-03-01 08:30:00.000")
            writer.person(number * 10, number, "D", 30, "M", "N", "W")

    dest = tmp_path / "dest"
    result = odp(config, "ingest", "nc", "--url", release(many_agencies).as_uri(),
                 "--dest", str(dest), "--import-id", new_id())

    assert result.returncode == 0, result.stderr
    listed = dest / "new_agencies.csv"
    [line] = [line for line in result.stdout.splitlines() if line.startswith("new agencies")]
    assert line == f"new agencies: 120 (listed in {listed})"
    rows = listed.read_text().splitlines()
    assert rows[0] == "id,name"
    assert sorted(row.split(",", 1)[1] for row in rows[1:]) == sorted(names)
