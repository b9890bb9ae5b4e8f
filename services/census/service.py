"""The `census` service: on `census_requested` (from admin) or its `refresh`
rpc it fetches the ACS 5-year profiles of the requested years (the
request's, else CENSUS_YEARS, else acs.DEFAULT_YEARS) for the three states,
replaces those years' profiles in one transaction and announces
`census_loaded`; when anything could not be fetched it announces
`census_failed` and the stored profiles stay as they were.

    {"request_id": "9f...", "years": [2022], "profiles": 1834, "loaded_at": "..."}

Each request is recorded in census.loads, so a request delivered again
after it ended is not fetched again.
"""

from __future__ import annotations

import logging
import uuid

from nameko.rpc import rpc
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine

from services.census import acs, profiles
from services.census.acs import CensusError
from shared import outbox
from shared.config import Config
from shared.events import (
    ADMIN_SOURCE,
    CENSUS_FAILED,
    CENSUS_LOADED,
    CENSUS_REQUESTED,
    ValidationError,
    validated,
)
from shared.nameko_support import Database, OutboxRelay, Settings
from shared.retrying import Malformed, retrying_event_handler
from shared.tables import census_loads, census_outbox

log = logging.getLogger(__name__)

SOURCE = "census"
RUNNING, LOADED, FAILED = "running", "loaded", "failed"


def outcome(row) -> dict:
    """A load as the rpc answers it."""
    out = {key: row._mapping[key] for key in
           ("request_id", "years", "status", "profiles", "error", "started_at",
            "finished_at")}
    for key in ("started_at", "finished_at"):
        out[key] = out[key].isoformat() if out[key] else None
    return out


def _row(conn, request_id: str):
    return conn.execute(select(census_loads)
                        .where(census_loads.c.request_id == request_id)).one()


def run_load(engine: Engine, config: Config, request_id: str, years=None,
             **fetch_options) -> dict:
    """Load the profiles of `years` (None: the configured ones) for the
    request, recording its outcome in census.loads and census.outbox; returns
    the load (outcome()). A request that already ended is left as it was.

    `fetch_options` go to acs.fetch_all (retries, backoff, timeout, session).
    Raises only when the database cannot record the outcome."""
    problem = None
    try:
        years = acs.configured_years(config, years)
    except CensusError as error:
        years, problem = [], str(error)

    ended = _start(engine, request_id, years)
    if ended is not None:
        log.info("census request %s already %s; nothing to do", request_id, ended["status"])
        return ended

    log.info("census request %s: fetching the profiles of %s", request_id, years)
    try:
        if problem:
            raise CensusError(problem)
        rows = acs.fetch_all(config, years, **fetch_options)
    except Exception as error:
        message = str(error) if isinstance(error, CensusError) else (
            f"the profiles could not be fetched: {type(error).__name__}: {error}")
        log.error("census request %s failed: %s", request_id, message)
        return _fail(engine, request_id, years, message)

    try:
        with engine.begin() as conn:
            count = profiles.replace(conn, years, rows)
            loaded_at = conn.execute(select(func.now())).scalar()
            conn.execute(update(census_loads)
                         .where(census_loads.c.request_id == request_id)
                         .values(status=LOADED, finished_at=loaded_at, profiles=count,
                                 error=None))
            outbox.record(conn, SOURCE, CENSUS_LOADED,
                          {"request_id": request_id, "years": years, "profiles": count,
                           "loaded_at": loaded_at.isoformat()}, table=census_outbox)
            result = outcome(_row(conn, request_id))
    except Exception as error:
        log.exception("census request %s: the profiles could not be stored", request_id)
        return _fail(engine, request_id, years, f"the profiles could not be stored: "
                                                f"{type(error).__name__}: {error}")
    log.info("census request %s: %d profiles of %s stored", request_id, count, years)
    return result


def _start(engine: Engine, request_id: str, years: list[int]) -> dict | None:
    """Record the request as running; the load when it had already ended."""
    with engine.begin() as conn:
        conn.execute(pg_insert(census_loads)
                     .values(request_id=request_id, years=years, status=RUNNING)
                     .on_conflict_do_nothing(index_elements=["request_id"]))
        row = conn.execute(select(census_loads)
                           .where(census_loads.c.request_id == request_id)
                           .with_for_update()).one()
        if row.status != RUNNING:
            return outcome(row)
        # Running already: a redelivery after the service stopped mid-load.
        conn.execute(update(census_loads).where(census_loads.c.request_id == request_id)
                     .values(years=years, started_at=func.now()))
    return None


def _fail(engine: Engine, request_id: str, years: list[int], message: str) -> dict:
    with engine.begin() as conn:
        failed = conn.execute(update(census_loads)
                              .where(census_loads.c.request_id == request_id,
                                     census_loads.c.status == RUNNING)
                              .values(status=FAILED, finished_at=func.now(), error=message))
        if failed.rowcount:
            outbox.record(conn, SOURCE, CENSUS_FAILED,
                          {"request_id": request_id, "years": years, "error": message},
                          table=census_outbox)
        return outcome(_row(conn, request_id))


class CensusService(OutboxRelay):
    name = "census"
    outbox_table = census_outbox

    config = Settings()
    db = Database()

    # A request whose outcome cannot even be recorded (the database is down)
    # is tried again by the platform's retry policy (shared/retrying.py).
    @retrying_event_handler(ADMIN_SOURCE, CENSUS_REQUESTED)
    def load_profiles(self, payload: dict) -> None:
        try:
            self._load(payload)
        except ValidationError as error:
            raise Malformed(f"census_requested: {error.messages}") from None

    @rpc
    def refresh(self, years=None, request_id=None) -> dict:
        """Load the profiles of `years` (default: the configured ones) now and
        return the load: {"request_id", "years", "status", "profiles",
        "error", "started_at", "finished_at"}."""
        try:
            return self._load({"request_id": request_id or uuid.uuid4().hex, "years": years})
        except ValidationError as error:
            raise ValueError(f"not a census request: {error.messages}") from None

    def _load(self, payload: dict) -> dict:
        request = validated(CENSUS_REQUESTED, payload)
        result = run_load(self.db, self.config, request["request_id"], request["years"])
        self.publish_now()
        return result


SERVICES = (CensusService,)
