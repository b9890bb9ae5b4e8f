"""Recompute a state's summaries and facts after a load, once.

Everything happens in one transaction: the new summary table replaces the
old one, the facts are replaced, the state's generation goes up by one and
`stats_refreshed` goes into the outbox. Readers see the previous numbers
until it commits.

Each refresh is stamped with the data version of the load it read: the
newest loaded import of the state, as ingest recorded it in the database.
An event's data version only says whether there may be something to do: an
event not newer than the stamp changes nothing (the same event handled
twice, or an older import's event arriving after a newer one), and an event
that names a version no import has loaded cannot make a refresh claim it.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from services.stats import summaries
from services.stats.registry import STATE_STATS
from shared import metrics, outbox
from shared.db import advisory_key, schema_exists
from shared.events import STATS_REFRESHED
from shared.states import STATES
from shared.tables import facts, generations, import_runs, stats_outbox

log = logging.getLogger(__name__)

SOURCE = "stats"
# How often a refresh builds again when a new load went live meanwhile.
REBUILDS = 3


def refresh(engine, state: str, data_version: int, rebuild: bool = False,
            wait: bool = True) -> dict | None:
    """Refresh `state` for a load of `data_version`; the stats_refreshed
    payload, or None when there was nothing newer to do. `rebuild` builds the
    tables again from the live load even when they cover it (new code that
    reads tables of another shape: rebuild_outdated). Without `wait`, a
    refresh of the state under way elsewhere means None at once."""
    state_stats = STATE_STATS.get(state)
    if state_stats is None:
        # A state this process was not given the stats part of: a handler
        # that raised would have its event redelivered without end.
        log.warning("no summaries are registered for %s; nothing to refresh", state)
        return None
    started = time.monotonic()
    with _refreshing(engine, state, wait) as held:
        if not held:
            log.info("%s: a refresh is under way elsewhere; leaving it to that one", state)
            return None
        for _ in range(REBUILDS):
            with engine.connect() as conn:
                current = conn.execute(select(generations)
                                       .where(generations.c.state == state)).first()
                if (current is not None and current.data_version >= data_version
                        and not rebuild):
                    log.info("%s stats already cover data version %s; nothing to do", state,
                             data_version)
                    return None
                if not schema_exists(conn, state):
                    log.warning("%s has no loaded data; nothing to refresh", state)
                    return None
                live = _live(conn, state)
            if live is None:
                log.warning("%s has no loaded import; nothing to refresh", state)
                return None
            # What the refresh covers is what is live (which may be newer than
            # the event names), never the event's word.
            target, import_id = live
            if current is not None and current.data_version >= target and not rebuild:
                if data_version > target:
                    log.warning("%s: an event names data version %s, but the newest "
                                "loaded import is version %s; nothing to refresh", state,
                                data_version, target)
                return None
            state_facts = _build(engine, state, state_stats)
            with engine.begin() as conn:
                if _live(conn, state) != live:
                    # An import went live while the tables were built: they may
                    # mix two releases. Build them again from the new one.
                    log.info("%s: a new load went live during the refresh; again", state)
                    continue
                summaries.swap(conn, state)
                payload = _publish(conn, state, state_facts, current, target, import_id)
            seconds = time.monotonic() - started
            metrics.REFRESH_DURATION.labels(state=state).observe(seconds)
            log.info("%s stats refreshed to generation %d in %.1fs", state,
                     payload["generation"], seconds)
            return payload
    raise RuntimeError(f"{state}: new loads kept going live during {REBUILDS} refreshes")


def behind(engine) -> list[tuple[str, int]]:
    """(state, data version) of each state whose live load is newer than its
    published numbers: a dataset_loaded lost (dead-lettered after a long
    outage, say) leaves it so until something refreshes it."""
    with engine.connect() as conn:
        published = dict(conn.execute(select(generations.c.state,
                                             generations.c.data_version)).all())
        found = []
        for state in STATE_STATS:
            live = _live(conn, state)
            if live is not None and live[0] > published.get(state, -1):
                found.append((state, live[0]))
    return found


def rebuild_outdated(engine) -> list[str]:
    """Rebuild the tables of every published state whose live tables are of an
    older shape than this code reads (summaries.outdated); the states rebuilt."""
    rebuilt = []
    with engine.connect() as conn:
        published = conn.execute(select(generations.c.state, generations.c.data_version)).all()
        stale = [(state, version) for state, version in published
                 if state in STATE_STATS and schema_exists(conn, state)
                 and summaries.outdated(conn, state)]
    for state, version in stale:
        log.info("%s: the published tables are of an older shape; building them again",
                 state)
        if refresh(engine, state, version, rebuild=True) is not None:
            rebuilt.append(state)
    return rebuilt


def _live(conn, state: str):
    """(data version, import id) of the state's live load, or None."""
    row = conn.execute(
        select(import_runs.c.data_version, import_runs.c.import_id)
        .where(import_runs.c.state == state, import_runs.c.status == "loaded")
        .order_by(import_runs.c.data_version.desc()).limit(1)).first()
    return None if row is None else (row.data_version, row.import_id)


@contextmanager
def _refreshing(engine, state: str, wait: bool = True):
    """The state's refresh lock, held on a connection of its own while the
    tables are built on others (a session lock: no transaction stays open);
    yields whether it is held (always, when it may `wait`)."""
    key = advisory_key(f"stats:{state}")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        try:
            if wait:
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            elif not conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                  {"key": key}).scalar():
                yield False
                return
            yield True
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        except BaseException:
            # A pooled connection must never go back still holding the lock:
            # closing this one for good releases it whatever happened.
            conn.invalidate()
            raise


def _build(engine, state: str, state_stats) -> dict:
    """Every table under its building name, each statement committed as it
    ends, on connections of their own: the summary in its lanes at once,
    beside them the agency snapshot and the facts; then the agency roll-ups
    on one connection and the summary's index and statistics and the officer
    roll-up on another. The facts. Readers never see building tables;
    refresh() swaps them in, in one transaction."""
    @contextmanager
    def build_connection():
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"SET work_mem = '{summaries.BUILD_WORK_MEM}'")
            yield conn
            conn.exec_driver_sql("RESET work_mem")

    def on_connection(work, *args):
        with build_connection() as conn:
            return work(conn, *args)

    def agencies_and_facts(conn) -> dict:
        summaries.build_agencies(conn, state)
        return state_stats.facts(conn, STATES[state], summaries.building_agencies(state))

    def finish_summary(conn) -> None:
        summaries.finish_summary(conn, state)
        summaries.build_rollups(conn, state, summaries.SIDE_ROLLUPS)

    try:
        with build_connection() as conn:
            lanes = summaries.create_summary(conn, state)
        # Leaving the pool waits for every connection's work, failed or not,
        # so nothing is still building when the tables are dropped below.
        with ThreadPoolExecutor(max_workers=len(lanes) + 1) as pool:
            side = pool.submit(on_connection, agencies_and_facts)
            for lane in [pool.submit(on_connection, summaries.fill_summary, state, stops)
                         for stops in lanes]:
                lane.result()
            rest = [pool.submit(on_connection, summaries.build_rollups, state,
                                summaries.CHAIN_ROLLUPS),
                    pool.submit(on_connection, finish_summary)]
            for work in rest:
                work.result()
            return side.result()
    except BaseException:
        with build_connection() as conn:
            summaries.drop_building(conn, state)
        raise


def republish_agencies(engine, state: str) -> dict | None:
    """A new agency mapping or new census profiles change the agencies'
    names and profiles, not a single count: rebuild only the agency snapshot
    and the names in the facts, and publish them as a new generation of the
    same data. None when the state has no published numbers yet (its first
    refresh applies the mapping)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                     {"key": advisory_key(f"stats:{state}")})
        current = conn.execute(select(generations).where(generations.c.state == state)).first()
        if current is None or not schema_exists(conn, state):
            return None
        summaries.build_agencies(conn, state)
        state_facts = conn.execute(select(facts.c.facts).where(facts.c.state == state)).scalar()
        names = dict(conn.execute(text(
            f"SELECT id, name FROM {summaries.building_agencies(state)}")).all())
        for agency in state_facts["top_agencies"]:
            agency["name"] = names.get(agency["id"], agency["name"])
        summaries.swap(conn, state, summaries.AGENCY_TABLES)
        payload = _publish(conn, state, state_facts, current, current.data_version,
                           current.import_id)
    log.info("%s agencies republished as generation %d", state, payload["generation"])
    return payload


def _publish(conn, state: str, state_facts: dict, current, data_version: int,
             import_id: str) -> dict:
    """Store the facts, bump the generation and record stats_refreshed."""
    conn.execute(insert(facts).values(state=state, facts=state_facts)
                 .on_conflict_do_update(index_elements=[facts.c.state],
                                        set_={"facts": state_facts}))
    generation = (current.generation if current else 0) + 1
    values = {"generation": generation, "data_version": data_version,
              "import_id": import_id, "refreshed_at": datetime.now(UTC)}
    conn.execute(insert(generations).values(state=state, **values)
                 .on_conflict_do_update(index_elements=[generations.c.state], set_=values))
    payload = {"state": state, "generation": generation, "data_version": data_version,
               "import_id": import_id, "refreshed_at": values["refreshed_at"].isoformat()}
    outbox.record(conn, SOURCE, STATS_REFRESHED, payload, table=stats_outbox)
    return payload
