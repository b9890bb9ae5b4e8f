"""Faults on the real processes: the broker stopped and started, an import
worker, the ingest service (alone, or with its worker as when its container
stops), stats and admin killed with SIGKILL, PostgreSQL restarted, each in
the middle of an import through admin, and memcached stopped; and what the
platform converges to once everything is up again.

The faults are done to PRIVATE instances (tests/support/private_services.py):
`make test` runs two test processes against the system's PostgreSQL and
RabbitMQ, which must not be stopped under the other one. Each test gets a
fresh database and vhost on them and starts ingest, stats, admin and the
gateway as processes.

Every import test follows one shape: a baseline release is live (loaded and
refreshed in process), import A of a release big enough to be caught in its
load (BIG_STOPS stops) is requested through the operator API, and import B
of a small release is queued behind it. The fault strikes A; then, within
CONVERGE seconds of everything being up again, A must end `refreshed` (its
data live, the record true) or `failed` (with a message a person can act
on, and only when its data never went live), loaded at most once, each data
version refreshed once; B must then start and end `refreshed`. Throughout,
the gateway serves one whole release: its facts' total and its statewide
counts are always the baseline's, A's or B's. Each fault's time to
converge is printed (`FAULT <name>: converged in 12.3 s (refreshed)`; see
them with `pytest -m fault -rP`), never asserted beyond the CONVERGE bound.
(A poison event is tests/test_retry_policy.py's.)
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from services.ingest.nc.synthetic import (
    RawReleaseWriter,
    generate_release,
    write_simple_stops,
    zip_release,
)
from services.ingest.pipeline import run_import
from services.stats.refresh import refresh
from tests.support.private_services import PrivateInfra, Stack
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.fault, pytest.mark.e2e]

CONVERGE = 60.0
BASELINE_STOPS = 300
NEXT_STOPS = 700
# About six seconds of load on this machine's two cores (more under the
# other test process): long enough to be caught mid-COPY.
BIG_STOPS = 200_000
FINAL = ("refreshed", "failed")
RACES = ("asian", "black", "native_american", "other", "white")


@pytest.fixture(scope="session")
def infra():
    """PostgreSQL, RabbitMQ and memcached of this test process alone."""
    infra = PrivateInfra.start(f"odpfault{os.getpid()}")
    yield infra
    infra.close()


@pytest.fixture(scope="session")
def big_release(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fault-big")
    # Clean lines from 2003 on: every stop loads and is counted.
    generate_release(folder, BIG_STOPS, seed=11, first_year=2003, dirty=False)
    return zip_release(folder, folder / "STOPS_Extract.zip")


@pytest.fixture
def stack(infra, tmp_path, request):
    name = "fault_" + re.sub(r"\W", "_", request.node.name.removeprefix("test_"))[:40]
    stack = Stack(infra, name, tmp_path / "data")
    yield stack
    stack.close()


def simple_release(folder: Path, stops: int) -> Path:
    with RawReleaseWriter(folder) as writer:
        write_simple_stops(writer, stops, agency="Alder Police Department")
    return zip_release(folder, folder / "STOPS_Extract.zip")


def report(name: str, seconds: float, outcome: str, extra: str = "") -> None:
    line = f"FAULT {name}: converged in {seconds:.1f} s ({outcome}){extra}"
    print(line)


class ServedWatch:
    """Samples what the gateway serves, every quarter second: the facts'
    total and the sum of the statewide counts (each must be one release's)."""

    def __init__(self, url: str):
        self.url = url
        self.samples: list[tuple[float, str, int]] = []
        self.failures = 0  # answers other than 200 (a database outage), for the logs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.wait(0.25):
                for what, read in (("facts", self._facts), ("statewide", self._statewide)):
                    try:
                        value = read(session)
                    except (requests.RequestException, ValueError):
                        value = None
                    if value is None:
                        self.failures += 1
                    else:
                        self.samples.append((time.monotonic(), what, value))

    def _facts(self, session) -> int | None:
        answer = session.get(f"{self.url}/nc/api/facts/", timeout=5)
        return answer.json()["total_stops"] if answer.status_code == 200 else None

    def _statewide(self, session) -> int | None:
        answer = session.get(f"{self.url}/nc/api/statewide/stops/", timeout=5)
        if answer.status_code != 200:
            return None
        return sum(row[race] for row in answer.json() for race in RACES)

    def totals(self) -> set[int]:
        return {value for _, _, value in self.samples}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


@dataclass
class ImportRun:
    """Baseline live, import A (big) running, import B (small) queued."""

    stack: Stack
    baseline: int
    a: int
    b: int
    watch: ServedWatch

    @classmethod
    def begin(cls, stack: Stack, big_release: Path, tmp_path: Path) -> ImportRun:
        stack.start("ingest", "stats", "admin", "gateway")
        base = simple_release(tmp_path / "baseline", BASELINE_STOPS)
        outcome = run_import({"import_id": "baseline", "state": "nc", "url": base.as_uri()},
                             stack.config)
        assert outcome["event"] == "dataset_loaded", outcome
        assert refresh(stack.engine, "nc", outcome["payload"]["data_version"]) is not None
        watch = ServedWatch(stack.url)
        stack.closing.append(watch.close)
        wait_served(stack, BASELINE_STOPS)
        a = stack.request_import(big_release.as_uri(), "NC big release")
        b = stack.request_import(simple_release(tmp_path / "next", NEXT_STOPS).as_uri(),
                                 "NC next release")
        return cls(stack, BASELINE_STOPS, a, b, watch)

    def wait_copying(self, timeout: float = 60) -> None:
        """Until A's worker is COPYing Stop.txt into its staging schema, and
        has said so (admin has its progress in that phase)."""
        wait_until(lambda: (active(self.stack, "COPY nc_staging_%.stop FROM STDIN%")
                      and self.stack.import_record(self.a).phase == "load Stop.txt"),
             timeout, "A's COPY of Stop.txt", interval=0.1)
        assert self.stack.import_record(self.b).dispatched_at is None

    def wait_final(self, import_id: int, timeout: float = CONVERGE) -> tuple[object, float]:
        started = time.monotonic()
        seen: list = [None]

        def final():
            seen[0] = self.stack.import_record(import_id)
            return seen[0].status in FINAL

        try:
            wait_until(final, timeout, f"import {import_id} to end")
        except AssertionError:
            raise AssertionError(f"import {import_id} did not end within {timeout:.0f} s "
                                 f"of the fault's end: {seen[0]}") from None
        return seen[0], time.monotonic() - started

    def converge(self, name: str, expected: tuple[str, ...], max_attempts: int = 1) -> object:
        """A ends as `expected` within CONVERGE s, then B is refreshed; every
        check of the module's docstring. A's record. `max_attempts`: how many
        times A's request may have been run (a run that never ended may be
        run again; a loaded or failed one never is)."""
        record, seconds = self.wait_final(self.a)
        report(name, seconds, record.status,
               f": {record.error!r}" if record.status == "failed" else "")
        assert record.status in expected, record
        a_loaded = record.status == "refreshed"
        self.check_a(record, max_attempts)
        b_record, b_seconds = self.wait_final(self.b)
        print(f"FAULT {name}: the next import ended {b_record.status} {b_seconds:.1f} s later")
        assert b_record.status == "refreshed", b_record
        assert b_record.counts["stops"] == NEXT_STOPS
        wait_served(self.stack, NEXT_STOPS)
        self.check_served(a_loaded)
        self.check_loaded_once(a_loaded)
        if not a_loaded:
            assert_actionable(record.error)
        return record

    def check_a(self, record, max_attempts: int) -> None:
        (run,) = self.stack.query(
            "SELECT status, attempts, data_version, error FROM ingest.import_runs "
            "WHERE import_id = :id", id=str(self.a))
        outcomes = self.outbox_events(self.a)
        if record.status == "refreshed":
            # The record tells the truth: the data went live, once.
            assert run.status == "loaded", run
            assert record.error is None and record.counts["stops"] == BIG_STOPS, record
            assert record.data_version == run.data_version
            assert outcomes == ["dataset_loaded"], outcomes
        else:
            # Failed only when nothing of it went live, saying what happened
            # and what to do.
            assert run.status == "failed" and run.data_version is None, run
            assert record.error and record.error == run.error, record
            assert outcomes == ["dataset_failed"], outcomes
        assert run.attempts <= max_attempts, f"A's request was run {run.attempts} times"

    def outbox_events(self, import_id: int) -> list[str]:
        return [row.event_type for row in self.stack.query(
            "SELECT event_type FROM ingest.outbox WHERE payload->>'import_id' = :id "
            "AND event_type IN ('dataset_loaded', 'dataset_failed') ORDER BY id",
            id=str(import_id))]

    def check_served(self, a_loaded: bool) -> None:
        """Always one whole release: the baseline's, A's (when it loaded) or B's."""
        self.watch.close()
        print(f"served: {len(self.watch.samples)} answers sampled, "
              f"{self.watch.failures} unanswered")
        allowed = {self.baseline, NEXT_STOPS} | ({BIG_STOPS} if a_loaded else set())
        seen = self.watch.totals()
        assert seen <= allowed, (f"the gateway served totals {sorted(seen - allowed)}, "
                                 f"none of the releases' {sorted(allowed)}")
        assert self.baseline in seen and NEXT_STOPS in seen, seen
        facts = self.stack.query("SELECT (facts->>'total_stops')::int AS total FROM stats.facts "
                                 "WHERE state = 'nc'")
        assert [row.total for row in facts] == [NEXT_STOPS]
        assert self.stack.query("SELECT count(*) AS n FROM nc.stop")[0].n == NEXT_STOPS

    def check_loaded_once(self, a_loaded: bool) -> None:
        """One load per import, one refresh per data version, and the
        generation bumped once per refresh."""
        b_events = self.outbox_events(self.b)
        assert b_events == ["dataset_loaded"], b_events
        loads = self.stack.query("SELECT import_id, data_version FROM ingest.import_runs "
                                 "WHERE status = 'loaded' ORDER BY data_version")
        assert [row.import_id for row in loads] == (
            ["baseline", *([str(self.a)] if a_loaded else []), str(self.b)])
        refreshed = self.stack.query(
            "SELECT (payload->>'data_version')::int AS version, "
            "(payload->>'generation')::int AS generation FROM stats.outbox "
            "WHERE event_type = 'stats_refreshed' ORDER BY id")
        versions = [row.version for row in refreshed]
        assert len(versions) == len(set(versions)), f"a data version refreshed twice: {versions}"
        assert set(versions) <= {row.data_version for row in loads}
        assert versions[-1] == loads[-1].data_version
        assert [row.generation for row in refreshed] == list(range(1, len(refreshed) + 1))
        (generation,) = self.stack.query("SELECT generation, data_version FROM "
                                         "stats.generations WHERE state = 'nc'")
        assert (generation.generation, generation.data_version) == (
            len(refreshed), loads[-1].data_version)


def assert_actionable(error: str) -> None:
    """A failure's message says what happened in words, not as a bare
    exception, and what to do about it (or where to look)."""
    assert not error.lower().startswith("internal error"), (
        f"an unexplained failure, not a message a person can act on: {error!r}")
    assert re.search(r"request the import again|try (it )?again|retry|"
                     r"see the ingest service's log", error, re.IGNORECASE), (
        f"the message does not say what to do: {error!r}")


def active(stack: Stack, pattern: str) -> bool:
    """A database session (not this one) is running a statement like `pattern`."""
    return bool(stack.query("SELECT 1 FROM pg_stat_activity WHERE state = 'active' "
                            "AND pid <> pg_backend_pid() AND query LIKE :pattern",
                            pattern=pattern))


def served_total(stack: Stack) -> int | None:
    try:
        answer = requests.get(f"{stack.url}/nc/api/facts/", timeout=5)
    except requests.RequestException:
        return None
    return answer.json()["total_stops"] if answer.status_code == 200 else None


def wait_served(stack: Stack, total: int) -> None:
    wait_until(lambda: served_total(stack) == total, 30, f"the gateway serving {total} stops")


def readiness(stack: Stack) -> tuple[int, dict]:
    answer = requests.get(f"{stack.url}/readyz", timeout=10)
    return answer.status_code, answer.json()


def workers_of(process) -> list[psutil.Process]:
    return [child for child in process.children()
            if "services.ingest.worker" in " ".join(child.cmdline())]


# 1. The broker


def test_rabbitmq_stopped_and_started_mid_import(stack, infra, big_release, tmp_path):
    run = ImportRun.begin(stack, big_release, tmp_path)
    run.wait_copying()
    infra.rabbit.stop_app()
    # Meanwhile the public pages need no broker: ready, degraded.
    status, body = readiness(stack)
    assert status == 200 and body["status"] == "degraded", body
    assert body["checks"] == {"database": "up", "broker": "down", "cache": "up"}, body
    time.sleep(10)
    infra.rabbit.start_app()

    record = run.converge("rabbitmq-stop-start", ("refreshed",))
    assert record.counts["stops"] == BIG_STOPS
    assert readiness(stack)[1]["status"] == "ok"


# 2-5. A process killed


def test_the_import_worker_killed_mid_copy(stack, big_release, tmp_path):
    run = ImportRun.begin(stack, big_release, tmp_path)
    run.wait_copying()
    workers = workers_of(stack["ingest"])
    assert workers, "no import worker under the ingest service"
    for worker in workers:
        worker.kill()

    record = run.converge("import-worker-killed", ("failed",))
    assert "stopped unexpectedly during load Stop.txt (exit code -9)" in record.error


def test_the_ingest_service_killed_mid_import_and_started_again(stack, big_release, tmp_path):
    run = ImportRun.begin(stack, big_release, tmp_path)
    run.wait_copying()
    workers = workers_of(stack["ingest"])
    assert workers, "no import worker under the ingest service"
    killed = stack.kill("ingest")
    # The worker outlives its service (as it does when a container's main
    # process dies): it goes on loading, with nobody reading its progress.
    assert all(worker.is_running() for worker in workers)
    stack.start("ingest")

    record = run.converge("ingest-service-killed", ("refreshed", "failed"))
    # Refreshed: the orphaned worker finished the load and recorded it with
    # its outbox event in one transaction; the new service relayed the event,
    # and the request redelivered to it found the import ended (loaded once).
    # Failed would mean the run was ended as orphaned, its data never live.
    finished = f"import {run.a} loaded" in killed.log()  # the worker logs to its output
    replayed = f"import {run.a} already ended" in stack["ingest"].log()
    print(f"ingest-service-killed: A {record.status}; the orphaned worker "
          f"{'finished the load' if finished else 'did not finish'}; the redelivered "
          f"request {'found the import ended' if replayed else 'was not seen'}")


def test_the_ingest_service_and_its_worker_killed_mid_import(stack, big_release, tmp_path):
    """As when the service's container is stopped: nothing is left to end the
    run, so the run stays `running` with nobody holding the state's lock."""
    run = ImportRun.begin(stack, big_release, tmp_path)
    run.wait_copying()
    workers = workers_of(stack["ingest"])
    assert workers, "no import worker under the ingest service"
    stack.kill("ingest", group=True)
    psutil.wait_procs(workers, timeout=10)
    stack.start("ingest")

    record = run.converge("ingest-container-killed", ("refreshed", "failed"),
                          max_attempts=2)
    (attempts,) = stack.query("SELECT attempts FROM ingest.import_runs WHERE import_id = :id",
                              id=str(run.a))
    print(f"ingest-container-killed: A {record.status} after {attempts.attempts} run(s): "
          + ("the redelivered request ran the unfinished import again"
             if record.status == "refreshed" else
             f"ended as orphaned: {record.error!r}"))


def test_stats_killed_mid_refresh_and_started_again(stack, big_release, tmp_path):
    run = ImportRun.begin(stack, big_release, tmp_path)
    # Mid-refresh: stats has taken A's dataset_loaded and builds the summary.
    wait_until(lambda: f"(import {run.a}); refreshing" in stack["stats"].log(), CONVERGE,
         "stats taking A's load")
    wait_until(lambda: active(stack, "%stats.nc%_building%"), CONVERGE,
         "stats building A's summaries", interval=0.1)
    stack.kill("stats")
    # Killed before its refresh committed: the baseline is still published.
    assert [tuple(row) for row in stack.query("SELECT generation FROM stats.generations")] == [
        (1,)]
    stack.start("stats")

    record = run.converge("stats-killed", ("refreshed",))
    # A's own refresh (B waits for it), made once, by the new stats.
    (version,) = stack.query("SELECT count(*) AS n FROM stats.outbox WHERE event_type = "
                             "'stats_refreshed' AND (payload->>'data_version')::int = :v",
                             v=record.data_version)
    assert version.n == 1


def test_admin_killed_mid_import_and_started_again(stack, big_release, tmp_path):
    run = ImportRun.begin(stack, big_release, tmp_path)
    run.wait_copying()
    stack.kill("admin")
    # Down while A loads and is refreshed: its events wait in admin's queues.
    wait_until(lambda: stack.query("SELECT 1 FROM ingest.import_runs WHERE import_id = :id "
                             "AND status <> 'running'", id=str(run.a)),
         CONVERGE, "A's run to end")
    stack.start("admin")

    run.converge("admin-killed", ("refreshed",))


# 6. The database


def test_postgresql_restarted_mid_import(stack, infra, big_release, tmp_path):
    run = ImportRun.begin(stack, big_release, tmp_path)
    run.wait_copying()
    infra.postgres.restart()

    record = run.converge("postgresql-restart", ("failed",))
    # Its cause, in words: the database went away during the load.
    assert re.search(r"database", record.error, re.IGNORECASE), record.error


# 7. The cache


def test_memcached_stopped_the_gateway_answers_from_the_database(stack, infra, tmp_path):
    stack.start("gateway")
    base = simple_release(tmp_path / "baseline", BASELINE_STOPS)
    outcome = run_import({"import_id": "baseline", "state": "nc", "url": base.as_uri()},
                         stack.config)
    assert outcome["event"] == "dataset_loaded", outcome
    refresh(stack.engine, "nc", outcome["payload"]["data_version"])
    paths = ["/nc/api/facts/", "/nc/api/agency/", "/nc/api/statewide/stops/", "/nc/"]
    before = {path: requests.get(stack.url + path, timeout=10) for path in paths}
    assert all(answer.status_code == 200 for answer in before.values())
    wait_until(lambda: infra.memcached.items() > 0, 10, "answers cached")
    assert readiness(stack) == (200, {"status": "ok", "checks": {
        "database": "up", "broker": "up", "cache": "up"}})

    infra.memcached.stop()
    try:
        for path in paths:
            answer = requests.get(stack.url + path, timeout=10)
            assert answer.status_code == 200, (path, answer.text)
            if path != "/nc/":
                assert answer.json() == before[path].json(), path
        # Ready (the public pages need no cache), and saying what is down.
        assert readiness(stack) == (200, {"status": "degraded", "checks": {
            "database": "up", "broker": "up", "cache": "down"}})
        # Answers come from the database: new numbers published meanwhile are served.
        newer = simple_release(tmp_path / "newer", NEXT_STOPS)
        outcome = run_import({"import_id": "newer", "state": "nc", "url": newer.as_uri()},
                             stack.config)
        assert refresh(stack.engine, "nc", outcome["payload"]["data_version"]) is not None
        wait_served(stack, NEXT_STOPS)
        assert requests.get(stack.url + "/nc/", timeout=10).status_code == 200
    finally:
        infra.memcached.start()
    started = time.monotonic()
    wait_until(lambda: readiness(stack)[1]["status"] == "ok", CONVERGE, "readiness back to ok")

    def cached_again() -> bool:
        answer = requests.get(stack.url + "/nc/api/facts/", timeout=10)
        assert answer.status_code == 200 and answer.json()["total_stops"] == NEXT_STOPS
        return infra.memcached.items() > 0

    # The gateway's clients skip a server they found dead for a while, then
    # use it again.
    wait_until(cached_again, CONVERGE, "answers cached again", interval=0.5)
    report("memcached-stopped", time.monotonic() - started, "cache in use again",
           "; every answer 200 from the database meanwhile, /readyz degraded")
