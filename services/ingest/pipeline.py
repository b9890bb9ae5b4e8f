"""The import pipeline every state shares.

    fetch -> unpack -> parse + COPY into staging -> keys, indexes, foreign
    keys -> checks -> swap with the live schema (+ outbox event)

`run_import` never raises for a bad release: it ends in `dataset_loaded` or
`dataset_failed`, written to the outbox in the same transaction as the
import's last change (the swap, or the failure record), and returns that
event. The state's advisory lock serializes imports of one state, whoever
started them (the service, the `odp` command). An import id that already
ended is not loaded again: a redelivered request changes nothing, and gets
the earlier outcome back, marked as replayed.

At the end of each import, still holding the state's lock, the state's
import folders are pruned (services/ingest/import_folders.py): a loaded
import's release files go at once, its reports stay; a failed import's
files stay for INGEST_KEEP_FAILED_DAYS or until the state's next import
loads.

Run it outside eventlet (services/ingest/worker.py): COPY is refused on a
green psycopg2 connection, and a long blocking import would starve the
broker heartbeats of the service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from services.ingest import download, import_folders, staging, unpack
from services.ingest.agencies import AgencyIds
from services.ingest.errors import ImportFailed, database_lost
from services.ingest.formats import RELEASES, Release
from services.ingest.import_folders import ImportFolder
from services.ingest.parse_pool import ParsePool
from services.ingest.rawfile import CopySource
from services.ingest.rejects import Rejects
from shared import outbox
from shared.config import Config
from shared.db import advisory_key, make_engine, raw_connection
from shared.events import DATASET_FAILED, DATASET_LOADED, validated
from shared.states import STATES
from shared.tables import import_runs

log = logging.getLogger(__name__)

REJECTS_FILE = "rejects.csv"
INDEX_MEMORY = "512MB"
Reporter = Callable[[str, int, int | None], None]


def _no_report(phase: str, done: int, total: int | None) -> None:
    pass


class Throttled:
    """Passes progress on at most every `interval` seconds per phase, plus each
    phase's first and last report."""

    def __init__(self, report: Reporter, interval: float = 0.5):
        self.report = report
        self.interval = interval
        self._last: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if final or now - self._last.get(phase, 0.0) >= self.interval:
            self._last[phase] = now
            self.report(phase, done, total)


def destination_for(request: dict, config: Config) -> Path:
    if request.get("destination"):
        return Path(request["destination"])
    return config.data_dir / request["state"] / request["import_id"]


def state_lock_key(state: str) -> int:
    """The advisory lock every import of `state` holds while it runs."""
    return advisory_key(f"ingest:{state}")


@contextmanager
def state_lock(config: Config, state: str, name: str, wait: bool = True, tries: int = 1):
    """The state's import lock, on a connection of its own (named `name`)
    that holds it until the block ends: the lock goes with the connection.
    Yields the connection; without `wait`, None when another holds the lock
    after `tries` attempts 0.2 s apart."""
    with raw_connection(config, name) as conn:
        conn.autocommit = True
        held = False
        with conn.cursor() as cursor:
            for attempt in range(tries):
                if wait:
                    cursor.execute("SELECT pg_advisory_lock(%s)", (state_lock_key(state),))
                    held = True
                    break
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (state_lock_key(state),))
                held = cursor.fetchone()[0]
                if held:
                    break
                if attempt + 1 < tries:
                    time.sleep(0.2)
        yield conn if held else None


def run_import(request: dict, config: Config, report: Reporter = _no_report) -> dict:
    """Load one release; return the event it ended with: {"event", "payload"}.
    For an import that had already ended, that earlier event, marked
    `"replayed": True`."""
    request = validated("import_requested", request)
    state = request["state"]
    engine = make_engine(config)
    try:
        # Imports of one state run one at a time; a second waits here.
        with state_lock(config, state, f"ingest {state} lock") as lock_conn:
            with lock_conn.cursor() as cursor:
                ended = _start_run(engine, request)
                if ended is not None:
                    log.info("import %s already ended (%s); not loading it again",
                             request["import_id"], ended["event"])
                    # Marked, so that it is not counted as a second import.
                    return {**ended, "replayed": True}
                staging.drop_leftovers(cursor, state)
            event = _run(engine, request, config, Throttled(report), lock_conn)
            _tidy(engine, request, config, lock_conn)
            return event
    finally:
        engine.dispose()


def _tidy(engine, request: dict, config: Config, lock_conn) -> None:
    """Prune the state's import folders: after the outcome is recorded (a
    loaded import's files are then no longer needed) and before the state's
    lock is let go (no import of the state is running meanwhile)."""
    try:
        import_folders.prune(config, engine, request["state"], lock_conn)
    except Exception:  # the import's outcome stands; the next import prunes again
        log.exception("import %s: could not prune the %s import folders",
                      request["import_id"], request["state"])


def prune_now(config: Config, state: str) -> list[import_folders.Pruned] | None:
    """Prune `state`'s import folders now (`odp files --prune`); None when an
    import of the state is running, which prunes them itself when it ends."""
    engine = make_engine(config)
    try:
        with state_lock(config, state, f"odp files {state}", wait=False) as conn:
            if conn is None:
                return None
            return import_folders.prune(config, engine, state, conn)
    finally:
        engine.dispose()


def _start_run(engine, request: dict) -> dict | None:
    """Record the attempt; return the earlier outcome when this import already ended."""
    with engine.begin() as conn:
        conn.execute(
            insert(import_runs)
            .values(import_id=request["import_id"], state=request["state"],
                    url=request["url"], status="running", attempts=1)
            .on_conflict_do_update(
                index_elements=[import_runs.c.import_id],
                set_={"attempts": import_runs.c.attempts + 1},
                where=import_runs.c.status == "running"))
        row = conn.execute(select(import_runs.c.status, import_runs.c.result)
                           .where(import_runs.c.import_id == request["import_id"])).one()
    if row.status == "running":
        return None
    return row.result


def _run(engine, request: dict, config: Config, report: Throttled, lock_conn) -> dict:
    phase = "download"
    schema = None
    rejects = None
    files = None
    try:
        release = RELEASES.get(request["state"])
        if release is None:
            raise ImportFailed("start", f"{request['state']} releases cannot be imported "
                               f"yet (this platform imports {', '.join(sorted(RELEASES))})")
        folder = destination_for(request, config)
        files = ImportFolder.open(folder, request["state"], request["import_id"],
                                  config.data_dir, lock_conn)
        found = _obtain_files(release, request, files, config, report)
        phase = "load"
        files.before_write([folder / REJECTS_FILE])
        rejects = Rejects(folder / REJECTS_FILE)
        agencies = AgencyIds.load(engine, release.state.code)
        parse = release.parser(request, rejects, agencies, engine)
        schema = staging.new_staging_name(release.state.code)
        with raw_connection(config, f"ingest {release.state.code}") as conn, \
                _background() as keys, _background() as foreign_keys, \
                ParsePool(config.ingest_parse_workers) as pool:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f"SET timezone = '{release.state.time_zone}'")
                cursor.execute("SET synchronous_commit = off")
                staging.create(cursor, schema, release.tables_sql)
                building = []
                for position, file_name in enumerate(release.files):
                    phase = f"load {file_name}"
                    _copy_file(cursor, schema, release, parse, file_name, found[file_name],
                               report, pool)
                    _check_rejects(file_name, parse, rejects, config)
                    if position == 0:
                        # The first file names every agency; the rest refer to its rows.
                        if not parse.loaded[file_name]:
                            raise ImportFailed(phase, f"{file_name} holds no loadable rows")
                        _insert_agencies(cursor, schema, agencies)
                    # While the next file loads, this table's key and indexes are built
                    # on a second connection, then its foreign keys on a third. Each
                    # queue runs in file order, so the tables a foreign key refers to
                    # have their keys by then.
                    table = release.copy_tables[file_name]
                    own = keys.submit(_execute_alone, config, schema, f"{table} keys",
                                      release.table_keys[table])
                    building.append(foreign_keys.submit(
                        _execute_after, own, config, schema, f"{table} foreign keys",
                        release.foreign_keys[table]))
                # The parse workers are not needed for the indexes.
                pool.close()
                rejects.close()
                phase = "index"
                for done, future in enumerate(building, 1):
                    future.result()
                    report("index", done, len(building))
                staging.grant_readers(cursor, schema)
        phase = "swap"
        report("swap", 0, 1)
        event = _swap(engine, request, release, schema, parse, agencies, rejects, folder)
        schema = None
        report("swap", 1, 1)
        return event
    except Exception as error:
        if not isinstance(error, ImportFailed):
            lost = database_lost(error)
            if lost:
                log.warning("import %s: %s", request["import_id"], lost, exc_info=True)
                error = ImportFailed(phase, f"during {phase}, {lost}")
            else:
                log.exception("import %s failed unexpectedly", request["import_id"])
                error = ImportFailed(phase, f"internal error during {phase}: "
                                    f"{type(error).__name__}: {error}")
        log.warning("import %s failed in %s: %s", request["import_id"], error.phase, error)
        return _fail(engine, config, request, error, schema, rejects)
    finally:
        if files is not None:
            try:
                files.close()
            except Exception:  # the lock's connection is gone, and the lock with it
                log.exception("import %s: could not release its folder", request["import_id"])


def _obtain_files(release: Release, request, files: ImportFolder, config: Config, report
                  ) -> dict[str, Path]:
    """The release's files: reused when the folder already holds them all.
    Whatever is downloaded or unpacked is recorded in the folder first."""
    find = release.find_files
    folder = files.path
    found = find(folder)
    if len(found) == len(release.files):
        log.info("using the files already in %s", folder)
        return found
    source = download.fetch(request["url"], folder, config,
                            lambda done, total: report("download", done, total),
                            before_write=files.before_write)
    if source.is_dir():
        found = find(source)
    else:
        unpack.safe_unzip(source, folder, config.ingest_max_unzipped_bytes,
                          lambda done, total: report("unpack", done, total),
                          reserve=config.ingest_disk_reserve_bytes,
                          before_write=files.before_write)
        found = find(folder)
    missing = [name for name in release.files if name not in found]
    if missing:
        raise ImportFailed("unpack", f"{source.name} has no {', '.join(missing)} "
                           f"(a {release.state.name} release needs {', '.join(release.files)})")
    return found


def _copy_file(cursor, schema, release: Release, parse, file_name, path, report,
               pool: ParsePool) -> None:
    phase = f"load {file_name}"
    rows = release.rows(parse, file_name, path,
                        lambda done, total: report(phase, done, total), pool)
    started = time.monotonic()
    with CopySource(rows) as source:
        try:
            cursor.copy_expert(f"COPY {schema}.{release.copy_tables[file_name]} FROM STDIN",
                               source)
        except Exception:
            if source.error is None:
                raise
    if source.error is not None:
        # A release found broken mid-file (a workbook sheet of other
        # columns), or its parse failing (a parse worker gone), says so
        # itself, not as the cancelled COPY psycopg2 reports (which would
        # read as a lost connection), and raised outside the handler so it
        # does not carry that as its context either.
        raise source.error
    # The server's own count of the rows COPY took, against what the parse sent.
    if cursor.rowcount != parse.loaded[file_name]:
        raise ImportFailed("check", f"{file_name}: the database took {cursor.rowcount:,} "
                           f"rows but {parse.loaded[file_name]:,} were sent")
    log.info("%s: %s rows loaded in %.1fs", file_name, f"{parse.loaded[file_name]:,}",
             time.monotonic() - started)


def _check_rejects(file_name: str, parse, rejects: Rejects, config: Config) -> None:
    rejected = rejects.by_file[file_name]
    lines = parse.lines[file_name]
    if lines and rejected / lines > config.ingest_max_reject_share:
        raise ImportFailed(
            f"load {file_name}",
            f"{file_name}: {rejected:,} of {lines:,} lines rejected "
            f"({rejected / lines:.1%}), over the limit of "
            f"{config.ingest_max_reject_share:.1%}; the reasons are in {rejects.path}")


@contextmanager
def _background():
    """One background thread; on an error its queued work is dropped rather
    than run against a staging schema that is about to go."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _insert_agencies(cursor, schema: str, agencies: AgencyIds) -> None:
    cursor.execute(f"INSERT INTO {schema}.agency (id, name) "
                   "SELECT * FROM unnest(%s::int[], %s::text[])",
                   (list(agencies.used.values()), list(agencies.used.keys())))


def _execute_after(first: Future, config: Config, schema: str, what: str, statements
                   ) -> None:
    first.result()
    _execute_alone(config, schema, what, statements)


def _execute_alone(config: Config, schema: str, what: str, statements) -> None:
    started = time.monotonic()
    with raw_connection(config, "ingest index") as conn:
        conn.autocommit = True
        with conn.cursor() as cursor:
            # Sorting a key of tens of millions of rows in memory instead of
            # in temporary files; this is the server's memory, for this session.
            cursor.execute(f"SET maintenance_work_mem = '{INDEX_MEMORY}'")
            for sql in statements:
                cursor.execute(sql.format(schema=schema))
    log.info("%s in %.1fs", what, time.monotonic() - started)


def _swap(engine, request, release, schema, parse, agencies, rejects, folder) -> dict:
    state = release.state.code
    with engine.begin() as conn:
        # Held to the commit: the run cannot be ended as failed meanwhile
        # (orphans, fail_unfinished), and one already ended must not go live.
        status = conn.execute(select(import_runs.c.status).where(
            import_runs.c.import_id == request["import_id"]).with_for_update()).scalar()
        if status != "running":
            raise ImportFailed("swap", f"the import was already recorded {status} by another "
                                       "process; not made live")
        staging.swap(conn, state, schema)
        agencies.save_new(conn)
        data_version = conn.execute(text("SELECT nextval('ingest.data_version')")).scalar()
        payload = {
            "import_id": request["import_id"],
            "state": state,
            "data_version": data_version,
            "loaded_at": datetime.now(UTC).isoformat(),
            "counts": {release.count_names[name]: parse.loaded[name] for name in release.files},
            "dropped": dict(parse.dropped),
            "new_agencies": agencies.new_agencies(),
            "rejected_rows": rejects.total,
            "rejects_file": str(rejects.path),
        }
        event = {"event": DATASET_LOADED, "payload": payload}
        _finish_run(conn, request, "loaded", event, data_version=data_version)
        outbox.record(conn, release.state.ingest_service, DATASET_LOADED, payload)
    log.info("import %s loaded: %s", request["import_id"], payload["counts"])
    return event


def _fail(engine, config, request, error: ImportFailed, schema, rejects) -> dict:
    if rejects is not None:
        rejects.close()
    if schema is not None:
        try:
            with raw_connection(config, "ingest cleanup") as conn:
                conn.autocommit = True
                with conn.cursor() as cursor:
                    staging.drop(cursor, schema)
        except Exception:  # the next import of the state drops leftovers
            log.exception("could not drop staging schema %s", schema)
    payload = {
        "import_id": request["import_id"],
        "state": request["state"],
        "phase": error.phase,
        "error": error.message,
        "rejected_rows": rejects.total if rejects else 0,
        "rejects_file": str(rejects.path) if rejects else None,
    }
    event = {"event": DATASET_FAILED, "payload": payload}
    with engine.begin() as conn:
        if not _finish_run(conn, request, "failed", event, error=error.message):
            # Ended by another process meanwhile: its outcome stands.
            ended = conn.execute(select(import_runs.c.result).where(
                import_runs.c.import_id == request["import_id"])).scalar()
            return {**(ended or event), "replayed": True}
        outbox.record(conn, STATES[request["state"]].ingest_service, DATASET_FAILED, payload)
    return event


def fail_unfinished(config: Config, request: dict, phase: str, message: str) -> dict | None:
    """End an import whose worker died without recording an outcome. Only
    while no worker holds the state's lock: another copy of the request may
    have started the import again the moment the dead worker let it go, and
    its run must not be ended under it (a run left running is then the
    orphan timer's, services/ingest/orphans.py). None when nothing was ended."""
    engine = make_engine(config)
    try:
        # The dead worker's session may take a moment to be let go.
        with state_lock(config, request["state"], f"ingest {request['state']} failure",
                        wait=False, tries=10) as conn:
            if conn is not None:
                # Recorded while the lock is held: no worker starts the import
                # meanwhile.
                return fail_unfinished_holding_lock(engine, config, request, phase, message)
        log.warning("import %s: a worker holds the %s import lock; the orphan timer ends "
                    "this run if it is left running", request["import_id"], request["state"])
        return None
    finally:
        engine.dispose()


def fail_unfinished_holding_lock(engine, config, request, phase, message) -> dict | None:
    """fail_unfinished's work, for a caller that holds the state's lock."""
    with engine.begin() as conn:
        status = conn.execute(select(import_runs.c.status).where(
            import_runs.c.import_id == request["import_id"])).scalar()
        if status in ("loaded", "failed"):
            return None
        conn.execute(insert(import_runs).values(
            import_id=request["import_id"], state=request["state"], url=request["url"],
            status="running", attempts=1).on_conflict_do_nothing())
    return _fail(engine, config, request, ImportFailed(phase, message), None, None)


def _finish_run(conn, request, status, event, data_version=None, error=None) -> bool:
    """End the run, unless something else already ended it: whether it did."""
    return bool(conn.execute(import_runs.update()
                             .where(import_runs.c.import_id == request["import_id"],
                                    import_runs.c.status == "running")
                             .values(status=status, finished_at=func.now(), result=event,
                                     data_version=data_version, error=error)).rowcount)
