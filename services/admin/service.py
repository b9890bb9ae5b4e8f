"""The `admin` service: dataset records, imports and their reports.

Operators reach it through the gateway's operator API, which calls the rpc
methods below with the SHA-256 of the caller's bearer token; every method
checks it first. Admin emits `import_requested` (and `census_requested`,
`agency_mapping_updated`) through its outbox, and follows the ingest
services' `import_progress`, `dataset_loaded` and `dataset_failed` and the
stats service's `stats_refreshed` to move each import on.

    rpc.admin.add_dataset(digest, {"state": "nc", "name": "NC 2026-11", ...})
    rpc.admin.request_import(digest, 3)    # {"id": 7, "status": "queued", ...}
"""

from __future__ import annotations

import functools
import logging
import time

from marshmallow import ValidationError
from nameko.contextdata import ContextDataProvider
from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from services.admin import census, datasets, imports, mappings, reports, tokens
from services.admin.sweep import sweep
from shared.db import advisory_key
from shared.events import (
    ADMIN_SOURCE,
    CENSUS_FAILED,
    CENSUS_LOADED,
    DATASET_FAILED,
    DATASET_LOADED,
    IMPORT_PROGRESS,
    STATS_REFRESHED,
    validated,
)
from shared.nameko_support import Database, OutboxRelay, Settings, add_state_handlers
from shared.operator import (
    CALL_DEADLINE,
    CensusRefresh,
    ImportFilter,
    InvalidInput,
    NotFound,
    OperatorError,
    Unavailable,
    flatten,
)
from shared.retrying import Malformed, retrying_event_handler
from shared.states import STATES
from shared.tables import admin_outbox

log = logging.getLogger(__name__)

# A lost or refused connection: an outage to retry, not a bug.
DATABASE_OUTAGE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                   sa_exc.DisconnectionError)


def operator_call(method=None, *, publishes: bool = False):
    """An rpc method of the operator API: token checked, one transaction,
    then (when it `publishes`) the outbox sent at once."""
    if method is None:
        return functools.partial(operator_call, publishes=publishes)

    @rpc(expected_exceptions=(OperatorError,))
    @functools.wraps(method)
    def call(self, digest, *args):
        deadline = self.call_deadline
        if deadline is not None and time.time() > float(deadline):
            # The gateway answered 503 already; its client may be trying again.
            log.warning("operator call %s came %.1fs after its caller stopped waiting; "
                        "not run", method.__name__, time.time() - float(deadline))
            raise Unavailable("the admin service answered too late; nothing was done")
        try:
            with self.db.begin() as conn:
                tokens.check(conn, digest)
                result = method(self, conn, *args)
        except DATABASE_OUTAGE as error:
            # The operator is told to retry (503), not that we broke (500);
            # nothing was written, the transaction never committed.
            log.warning("operator call %s: the database is unavailable: %s", method.__name__,
                        type(error).__name__)
            raise Unavailable("the database is unavailable; try again shortly") from None
        if publishes:
            # Mails are left to the timer and the event handlers: a slow SMTP
            # server must not hold an operator's answer.
            self._flush(mails=False)
        return result

    return call


class CallDeadline(ContextDataProvider):
    """The deadline the gateway sent with an operator call, or None."""

    context_key = CALL_DEADLINE


def _load(schema, data) -> dict:
    try:
        return schema.load(data or {})
    except ValidationError as error:
        raise InvalidInput(flatten(error.messages)) from None


class AdminService(OutboxRelay):
    name = ADMIN_SOURCE
    outbox_table = admin_outbox

    def outbox_publisher(self):
        return imports.admin_publisher(self.config)

    config = Settings()
    db = Database()
    call_deadline = CallDeadline()

    @operator_call
    def check_token(self, conn) -> bool:
        """Whether the token opens the operator API: the gateway asks before
        it reads a request's body."""
        return True

    @operator_call
    def add_dataset(self, conn, body: dict) -> dict:
        return datasets.add(conn, self.config, body)

    @operator_call
    def list_datasets(self, conn) -> list[dict]:
        return datasets.all_(conn)

    @operator_call
    def get_dataset(self, conn, key) -> dict:
        return datasets.find(conn, str(key))

    @operator_call(publishes=True)
    def request_import(self, conn, dataset_key) -> dict:
        return imports.request(conn, datasets.find(conn, str(dataset_key)))

    @operator_call
    def list_imports(self, conn, query: dict) -> list[dict]:
        return imports.listed(conn, **_load(ImportFilter(), query))

    @operator_call
    def get_import(self, conn, import_id: int) -> dict:
        return imports.get(conn, int(import_id))

    @operator_call(publishes=True)
    def put_agency_mapping(self, conn, state: str, body: str) -> dict:
        _known_state(state)
        return mappings.replace_mapping(conn, state, mappings.parse_mapping(body))

    @operator_call
    def get_agency_mapping(self, conn, state: str) -> list[dict]:
        _known_state(state)
        return mappings.current_mapping(conn, state)

    @operator_call(publishes=True)
    def put_stop_reasons(self, conn, state: str, body: str) -> dict:
        _has_stop_reasons(state)
        return mappings.replace_stop_reasons(conn, body)

    @operator_call
    def get_stop_reasons(self, conn, state: str) -> str:
        _has_stop_reasons(state)
        return mappings.stop_reasons_csv(conn)

    @operator_call(publishes=True)
    def request_census_refresh(self, conn, body: dict) -> dict:
        year = _load(CensusRefresh(), body)["year"]
        return census.request(conn, [year] if year else None)

    @operator_call
    def get_census_refresh(self, conn, request_id: str) -> dict:
        return census.get(conn, str(request_id))

    # Events. Each runs in one transaction; a failure (database down) is
    # tried again by the platform's retry policy (shared/retrying.py).

    def _follow(self, event_type: str, payload: dict) -> None:
        try:
            payload = validated(event_type, payload)
        except ValidationError as error:
            raise Malformed(f"{event_type}: {error.messages}") from None
        with self.db.begin() as conn:
            if payload.get("state"):
                _follow_lock(conn, payload["state"])
            if event_type == STATS_REFRESHED:
                imports.stats_refreshed(conn, payload)
            elif event_type in (CENSUS_LOADED, CENSUS_FAILED):
                census.ended(conn, event_type, payload)
            else:
                import_id = imports.own_id(payload["import_id"])
                if import_id is None:
                    return
                if event_type == IMPORT_PROGRESS:
                    imports.progressed(conn, import_id, payload["phase"],
                                       payload["done"], payload["total"])
                elif event_type == DATASET_LOADED:
                    imports.loaded(conn, import_id, payload)
                else:
                    imports.failed(conn, import_id, payload)
        if event_type != IMPORT_PROGRESS:
            self._flush()

    @retrying_event_handler("stats", STATS_REFRESHED)
    def follow_stats_refreshed(self, payload: dict) -> None:
        self._follow(STATS_REFRESHED, payload)

    @retrying_event_handler("census", CENSUS_LOADED)
    def follow_census_loaded(self, payload: dict) -> None:
        self._follow(CENSUS_LOADED, payload)

    @retrying_event_handler("census", CENSUS_FAILED)
    def follow_census_failed(self, payload: dict) -> None:
        self._follow(CENSUS_FAILED, payload)

    def _flush(self, mails: bool = True) -> None:
        """Publish the outbox and send queued mails now; what fails here is
        left for the timers."""
        self.publish_now()
        if not mails:
            return
        try:
            reports.send_pending(self.db, self.config)
        except Exception:
            log.exception("could not send mails now")

    @timer(interval=10, eager=True)
    def catch_up(self) -> None:
        """What an outage left behind: imports whose events were lost
        (services/admin/sweep.py), unsent mails and a state whose next import
        was not dispatched (OutboxRelay's timer sends the events)."""
        for state in STATES:
            try:
                with self.db.begin() as conn:
                    _follow_lock(conn, state)
                    sweep(conn, self.config, state)
                    imports.dispatch_next(conn, state)
            except Exception:  # one state's trouble must not hold up the others'
                log.exception("%s: could not sweep the imports", state)
        self._flush()


def _follow_lock(conn, state: str) -> None:
    """One state's events (and its sweep) one at a time: a stats_refreshed
    and the dataset_loaded it covers, handled at once by two workers (both
    queued while admin was down), would each miss the other's uncommitted
    row and leave the import `loaded` for good."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                 {"key": advisory_key(f"admin:follow:{state}")})


def _known_state(state: str) -> None:
    if state not in STATES:
        raise NotFound(f"there is no state {state!r}; the states are {', '.join(STATES)}")


def _has_stop_reasons(state: str) -> None:
    if state not in STATES or not STATES[state].has_stop_reasons:
        having = [code for code, known in STATES.items() if known.has_stop_reasons]
        raise NotFound(f"only {', '.join(having)} has a stop-reason table, not {state!r}")


def _follower(event_type: str):
    def follow(self, payload: dict) -> None:
        self._follow(event_type, payload)
    return follow


# follow_ingest_nc_import_progress, ...: one handler per state and event.
for _event in (IMPORT_PROGRESS, DATASET_LOADED, DATASET_FAILED):
    add_state_handlers(AdminService, _event, _follower(_event), name="follow_{source}_{event}")

SERVICES = (AdminService,)
